"""The model zoo: `create_model(name, ...)` and `list_models(pattern)`; one family per module."""

from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from edgekit.zoo import (  # noqa: F401  (registration side effects: one family per module)
    alexnet,
    densenet,
    efficientnet,
    efficientnet_lite,
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
from edgekit.zoo.user import is_user_name

log = logging.getLogger(__name__)


def create_model(
    name: str, num_classes: int = 1000, in_chans: int = 3, weights: str | Path | dict | None = None, **kwargs
) -> nn.Module:
    """Build a zoo model (or `torchvision:NAME` / `timm:NAME` when that library is installed).
    Unknown names raise EdgekitError with close-match suggestions.

    `weights`: a state_dict (or a file holding one, read with weights_only) in the zoo's key layout (which is
    torchvision's for the families torchvision has), one the model maps (`map_state_dict`), or another
    library's names for the same architecture (timm's), matched by tensor order (`edgekit.state_layout`);
    loaded strictly; a classifier for another class count is left freshly initialised, and that is logged."""
    if is_external(name):
        model: nn.Module = create_external(name, num_classes=num_classes, in_chans=in_chans, **kwargs)
    else:
        model = MODELS.get(name).factory(num_classes=num_classes, in_chans=in_chans, **kwargs)
    if weights is not None:
        from edgekit.checkpoint import load_state, read_state_dict

        state = read_state_dict(weights) if isinstance(weights, (str, Path)) else weights
        source = f"weights {weights}" if isinstance(weights, (str, Path)) else "the state_dict given"
        note = load_state(model, state, source, name, None, transfer=True)
        if note:
            log.info(
                "%s: classifier %s re-initialised for %d classes (the weights were for %d)",
                name, note["classifier"], note["classes"], note["checkpoint_classes"],
            )  # fmt: skip
    return model


def resolve_name(name: str) -> str:
    """Canonical model name: aliases resolve, external and user-module names pass through."""
    return name if is_external(name) or is_user_name(name) else MODELS.resolve(name)


def list_models(pattern: str | None = None) -> list[str]:
    return MODELS.names(pattern)


def model_spec(name: str) -> ModelSpec:
    return MODELS.get(name)


__all__ = ["MODELS", "ModelSpec", "create_model", "list_models", "model_spec", "resolve_name"]
