"""A zoo model built for a data set's input: its classes, its channels, and the small-input stem rule."""

from __future__ import annotations

from typing import Any

from torch import nn

from edgekit.errors import EdgekitError
from edgekit.zoo import create_model, resolve_name

SMALL_INPUT_MAX_PX = 64  # at or below this size the stride-reduced stem keeps enough resolution


def uses_small_input(input_size: tuple[int, ...], small_input: bool | None) -> bool:
    """`small_input` when given, else whether the images are at most SMALL_INPUT_MAX_PX on each side."""
    _, h, w = input_size
    return small_input if small_input is not None else max(h, w) <= SMALL_INPUT_MAX_PX


def build_for_input(
    name: str,
    input_size: tuple[int, ...],
    num_classes: int,
    small_input: bool | None = None,
    options: dict[str, Any] | None = None,
    options_key: str = "model.options",
) -> nn.Module:
    """`options` are the factory's extra arguments; a wrong one is an error naming `options_key`."""
    options = options or {}
    try:
        return create_model(
            resolve_name(name),
            num_classes=num_classes,
            in_chans=input_size[0],
            small_input=uses_small_input(input_size, small_input),
            **options,
        )
    except TypeError as exc:
        raise EdgekitError(
            f"{options_key} {options} not accepted by {name} ({exc}): remove or rename the option"
        ) from None
