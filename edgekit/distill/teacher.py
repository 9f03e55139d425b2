"""The distillation teacher: the unpruned baseline by default, or any zoo model named in
`distill.teacher` with trained weights from `distill.teacher_weights` (a state_dict, loaded with
weights_only). Distilling from random weights only teaches noise, so a named teacher without weights is
an error, and so is a checkpoint for other classes or input channels than the data's."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from edgekit.checkpoint import load_weights, read_state_dict
from edgekit.errors import EdgekitError
from edgekit.zoo import resolve_name
from edgekit.zoo.for_data import build_for_input


def check_names(teacher: str | None, weights: str | None) -> None:
    """Config-level rules (no file access): a teacher needs weights, weights need a teacher, names resolve."""
    if teacher is None:
        if weights:
            raise EdgekitError(
                f"distill.teacher_weights={weights} is set but distill.teacher is not: name the teacher's model "
                "(distill.teacher=NAME) or drop teacher_weights to distil from the baseline"
            )
        return
    try:
        resolve_name(teacher)
    except EdgekitError as exc:  # keep the close-match suggestions, name the key
        raise EdgekitError(f"distill.teacher: {exc}") from None
    if not weights:
        raise EdgekitError(
            f"distill.teacher={teacher}: a teacher needs trained weights: give distill.teacher_weights=PATH (a "
            "state_dict checkpoint)"
        )


def check_inputs(teacher: str | None, weights: str | None) -> None:
    """Everything that can be checked before a run starts, including that the weights file exists."""
    check_names(teacher, weights)  # a teacher without weights is refused there
    if teacher and weights and not Path(weights).is_file():
        raise EdgekitError(f"teacher checkpoint {weights} does not exist: check distill.teacher_weights")


def _check_shapes(model: nn.Module, state: dict, path: str, num_classes: int, in_chans: int) -> None:
    """Class count (classifier rows) and input channels (first convolution's input) of the checkpoint."""
    head = state.get(f"{getattr(model, 'classifier_path', '')}.weight")
    if head is not None and head.shape[0] != num_classes:
        raise EdgekitError(
            f"teacher checkpoint {path} has {head.shape[0]} classes but the data has {num_classes}: give a teacher "
            f"trained on this data's {num_classes} classes"
        )
    own = model.state_dict()
    first_conv = next((k for k, v in own.items() if v.ndim == 4), None)
    if first_conv is not None and first_conv in state and state[first_conv].shape[1] != own[first_conv].shape[1]:
        raise EdgekitError(
            f"teacher checkpoint {path} takes {state[first_conv].shape[1]}-channel input but the data has {in_chans} "
            f"channels: give a teacher trained on {in_chans}-channel images"
        )


def load_teacher(
    name: str,
    weights: str,
    options: dict,
    input_size: tuple[int, ...],
    num_classes: int,
    small_input: bool | None = None,
) -> nn.Module:
    """Build zoo model `name` for the data's classes and channels (small-input stem as for the student)
    and load `weights` into it; returned in eval mode, on the CPU."""
    check_inputs(name, weights)
    canonical = resolve_name(name)
    model = build_for_input(
        canonical, input_size, num_classes, small_input, options, options_key="distill.teacher_options"
    )
    _check_shapes(model, read_state_dict(weights), weights, num_classes, input_size[0])
    load_weights(model, weights, canonical, input_size)
    return model.eval()
