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


MODELS: Registry[ModelSpec] = Registry("model", listing="`edgekit models`")


def register_model(name: str, *, family: str, paper: str, input_size=(3, 224, 224), num_classes=1000, aliases=()):
    def wrap(factory):
        MODELS.register(name)(ModelSpec(name, family, paper, factory, tuple(input_size), num_classes, tuple(aliases)))
        for alias in aliases:
            MODELS.alias(alias, name)
        return factory

    return wrap
