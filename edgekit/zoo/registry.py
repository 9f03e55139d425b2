"""The model registry: every zoo entry is a factory plus the facts `edgekit models` shows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from edgekit.registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    paper: str
    factory: Callable[..., nn.Module]
    input_size: tuple[int, int, int] = (3, 224, 224)  # default (C, H, W)
    num_classes: int = 1000  # the paper's head, used by `edgekit models`
    aliases: tuple[str, ...] = field(default=())
    # MACs in millions at input_size and num_classes as published (papers, torchvision's model cards), and where
    # from: `edgekit models` shows it beside edgekit's own count; tests/test_macs.py checks the two agree.
    published_macs: float | None = None
    macs_source: str = ""


MODELS: Registry[ModelSpec] = Registry("model", listing="`edgekit models`")


def register_model(
    name: str,
    *,
    family: str,
    paper: str,
    input_size=(3, 224, 224),
    num_classes=1000,
    aliases=(),
    published_macs: float | None = None,
    macs_source: str = "",
):
    if (published_macs is None) != (not macs_source):
        raise ValueError(f"{name}: published_macs and macs_source go together (a figure needs its source)")

    def wrap(factory):
        spec = ModelSpec(
            name, family, paper, factory, tuple(input_size), num_classes, tuple(aliases), published_macs, macs_source
        )
        MODELS.register(name)(spec)
        for alias in aliases:
            MODELS.alias(alias, name)
        return factory

    return wrap


def torchvision_macs(weights: str, gflops: float) -> dict:
    """`published_macs` and `macs_source` from a torchvision model card, whose "GFLOPS" (`_ops`) count
    multiply-adds: the convolutions and linear layers at the weights' crop size."""
    return {
        "published_macs": round(gflops * 1e3, 3),
        "macs_source": f"torchvision {weights}.IMAGENET1K_V1 model card: {gflops} GFLOPS (multiply-adds)",
    }
