"""The zoo contract's optional methods, typed for callers. nn.Module's __getattr__ types every attribute
as Tensor | Module, so `model.forward_features(x)` does not type-check although the contract holds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

CONTRACT = ("forward_features", "forward_head", "get_classifier", "reset_classifier")
PRUNING_HOOKS = ("pruning_ignored_layers", "pruning_options")


def method(model: nn.Module, name: str) -> Callable[..., Any]:
    """`model.<name>` as a callable (AttributeError when the model lacks it)."""
    found: Callable[..., Any] = getattr(model, name)
    return found


def optional(model: nn.Module, name: str, default: Any) -> Any:
    """`model.<name>()` when the model has the hook, else `default`."""
    return method(model, name)() if hasattr(model, name) else default
