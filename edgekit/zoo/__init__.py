"""The model zoo: `create_model(name, ...)` and `list_models(pattern)`; one family per module."""

from __future__ import annotations

from torch import nn

from edgekit.zoo import (  # noqa: F401  (registration side effects: one family per module)
    alexnet,
    densenet,
    efficientnet,
    ghostnet,
    googlenet,
    lenet,
    mnasnet,
    mobilenetv1,
    mobilenetv2,
    mobilenetv3,
    resnet,
    senet,
    shufflenet,
    squeezenet,
    vgg,
    xception,
)
from edgekit.zoo.external import create_external, is_external
from edgekit.zoo.registry import MODELS, ModelSpec


def create_model(name: str, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> nn.Module:
    """Build a zoo model (or `torchvision:NAME` / `timm:NAME` when that library is installed).
    Unknown names raise EdgekitError with close-match suggestions."""
    if is_external(name):
        return create_external(name, num_classes=num_classes, in_chans=in_chans, **kwargs)
    spec = MODELS.get(name)
    return spec.factory(num_classes=num_classes, in_chans=in_chans, **kwargs)


def resolve_name(name: str) -> str:
    """Canonical model name: aliases resolve, external names pass through."""
    return name if is_external(name) else MODELS.resolve(name)


def list_models(pattern: str | None = None) -> list[str]:
    return MODELS.names(pattern)


def model_spec(name: str) -> ModelSpec:
    return MODELS.get(name)


__all__ = ["MODELS", "ModelSpec", "create_model", "list_models", "model_spec", "resolve_name"]
