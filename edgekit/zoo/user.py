"""A user's own nn.Module in the zoo contract, so every stage treats it like a zoo model.

The classifier (the layer pruning must keep whole) is found automatically: the last nn.Linear or
nn.Conv2d whose output size is the number of classes; `ignored_layers` overrides it. The model's
output must be logits of shape (N, classes) for the run's inputs, checked before anything runs."""

from __future__ import annotations

import copy

import torch
from torch import nn

from edgekit.checkpoint import init_new_head
from edgekit.errors import EdgekitError

USER_PREFIX = "python:"


def user_model_name(module: nn.Module) -> str:
    """The name a run records for a module given from Python (it cannot be rebuilt from a recipe)."""
    return f"{USER_PREFIX}{type(module).__name__}"


def is_user_name(name: str) -> bool:
    return name.startswith(USER_PREFIX)


def find_classifier(module: nn.Module, num_classes: int) -> tuple[str, nn.Module]:
    """The last Linear / Conv2d producing `num_classes` outputs: (its name, the layer)."""
    found = [
        (name, m)
        for name, m in module.named_modules()
        if (isinstance(m, nn.Linear) and m.out_features == num_classes)
        or (isinstance(m, nn.Conv2d) and m.out_channels == num_classes)
    ]
    if not found:
        raise EdgekitError(
            f"{type(module).__name__} has no nn.Linear or nn.Conv2d with {num_classes} outputs to serve as its "
            "classifier: "
            "give a model whose last layer produces one logit per class, or name the layers to keep with ignored_layers"
        )
    return found[-1]


class UserModel(nn.Module):
    """Wraps `net`; `forward` is the user's forward, unchanged (the exported ONNX computes the same)."""

    def __init__(self, net: nn.Module, num_classes: int, ignored_layers: list[nn.Module] | None = None):
        super().__init__()
        self.net = net
        self.num_classes = num_classes
        self.source = user_model_name(net)
        name, _ = find_classifier(net, num_classes) if ignored_layers is None else ("", None)
        self.classifier_path = f"net.{name}" if name else ""
        self._ignored = list(ignored_layers) if ignored_layers is not None else []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # edgekit's augmentation can hand over 1-channel batches whose strides also read as channels_last;
        # convolutions then keep that layout, and a user's `x.view(n, -1)` fails on it. Give the user's
        # forward the standard layout (a memory layout only: nothing to export).
        if x.dim() == 4 and not torch.jit.is_tracing() and x.stride() != _standard_strides(x.shape):
            x = torch.empty(x.shape, dtype=x.dtype, device=x.device).copy_(x)
        return self.net(x)

    def get_classifier(self) -> nn.Module:
        return self.get_submodule(self.classifier_path)

    def pruning_ignored_layers(self) -> list[nn.Module]:
        return self._ignored or [self.get_classifier()]


def check_output(model: nn.Module, input_size: tuple[int, ...], num_classes: int) -> None:
    """Refuse a model that does not map (N, *input_size) to (N, num_classes) logits, or cannot run at all."""
    try:
        with torch.no_grad():
            out = model.eval()(torch.zeros(2, *input_size))
    except Exception as exc:  # any failure of the user's forward: say what input it got
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise EdgekitError(
            f"the model fails on a batch of {tuple(input_size)} inputs ({first}): give data of the size the model takes"
        ) from None
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, num_classes):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise EdgekitError(
            f"the model returns {shape} for a batch of 2, but edgekit needs logits of shape (N, {num_classes}) for "
            f"{num_classes} classes: return the classifier's logits from forward"
        )


def fit_head(net: nn.Module, num_classes: int) -> dict | None:
    """Transfer learning for a given module: when its last Linear / Conv2d has another output count than
    the data's classes, replace it by a freshly initialised layer with `num_classes` outputs
    (`checkpoint.init_new_head`)."""
    layers = [(n, m) for n, m in net.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    if not layers:
        return None
    name, last = layers[-1]
    outputs = last.out_features if isinstance(last, nn.Linear) else last.out_channels
    if outputs == num_classes:
        return None
    new = _resized(last, num_classes)
    init_new_head(new)
    parent_name, _, leaf = name.rpartition(".")
    setattr(net.get_submodule(parent_name) if parent_name else net, leaf, new)
    return {"classifier": name, "checkpoint_classes": int(outputs), "classes": num_classes}


def _resized(layer: nn.Linear | nn.Conv2d, outputs: int) -> nn.Module:
    """A copy of `layer` (same kernel, stride, padding, ...) with `outputs` outputs, freshly initialised."""
    new = copy.deepcopy(layer)
    if isinstance(new, nn.Linear):
        new.out_features = outputs
        new.weight = nn.Parameter(torch.empty(outputs, new.in_features))
    else:
        new.groups = 1  # a grouped classifier cannot keep its groups for an arbitrary class count
        new.out_channels = outputs
        new.weight = nn.Parameter(torch.empty(outputs, new.in_channels, *new.weight.shape[2:]))
    if new.bias is not None:
        new.bias = nn.Parameter(torch.empty(outputs))
    new.reset_parameters()
    return new


def _standard_strides(shape: torch.Size) -> tuple[int, ...]:
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return tuple(reversed(strides))
