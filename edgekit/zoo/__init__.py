"""The model zoo: `create_model(name, ...)` and `list_models(pattern)`; one family per module."""
from __future__ import annotations

from torch import nn

from edgekit.zoo import lenet, mobilenetv3, resnet  # noqa: F401  (registration side effects)
from edgekit.zoo.registry import MODELS, ModelSpec


def create_model(name: str, num_classes: int = 1000, in_chans: int = 3, **kwargs) -> nn.Module:
    """Build a zoo model. Unknown names raise EdgekitError with close-match suggestions."""
    spec = MODELS.get(name)
    return spec.factory(num_classes=num_classes, in_chans=in_chans, **kwargs)


def list_models(pattern: str | None = None) -> list[str]:
    return MODELS.names(pattern)


def model_spec(name: str) -> ModelSpec:
    return MODELS.get(name)


__all__ = ["MODELS", "ModelSpec", "create_model", "list_models", "model_spec"]
