"""Another library's key names for the same architecture (timm's `conv_stem`/`blocks.S.B.conv_dw`, a
DataParallel `module.` prefix, ...) mapped onto a model's own, by the order the tensors are registered in.

Why by order: a network's modules are registered in forward order in torchvision, timm and edgekit alike,
so two implementations of one architecture list the same tensors in the same sequence under different
names. Writing one rename table per library and family would be long and would break silently on a
library's next rename; the sequence check here is strict instead: every tensor must agree in kind (the
last name part: weight, bias, running_mean, ...) and in shape, except that a 1x1 convolution may stand for
a linear layer of the same weights (timm's MobileNetV3 `conv_head`) and the classifier may be for another
class count (transfer learning; the caller decides what to do with it). Anything else is an error naming
the first tensor that disagrees."""

from __future__ import annotations

import torch

from edgekit.errors import EdgekitError

_COUNT = "num_batches_tracked"  # a buffer some exporters leave out of their files


class LayoutMismatch(EdgekitError):
    """The given tensors are not this architecture's in another naming."""


def strip_wrapper_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the `module.` prefix that nn.DataParallel / DistributedDataParallel put on every key."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module.") :]: v for k, v in state.items()}
    return state


def needs_mapping(own: dict[str, torch.Tensor], given: dict[str, torch.Tensor]) -> bool:
    """True when `given` names tensors the model does not have (so it is in another layout)."""
    return any(k not in own for k in given)


def map_by_order(
    own: dict[str, torch.Tensor], given: dict[str, torch.Tensor], classifier: str = ""
) -> tuple[dict[str, torch.Tensor], list[tuple[str, str]]]:
    """`given` renamed to `own`'s keys, matched position by position. Returns the renamed state and the
    (given name, own name) pairs that changed. Raises LayoutMismatch naming the first disagreement.
    `classifier` (a module path): its weight and bias may differ in their first dimension."""
    counts_given = any(k.endswith(_COUNT) for k in given)
    own_keys = [k for k in own if counts_given or not k.endswith(_COUNT)]
    items = list(given.items())
    if len(items) != len(own_keys):
        raise LayoutMismatch(
            f"the file holds {len(items)} tensors where the model has {len(own_keys)}, so its layout cannot be "
            "matched to this architecture"
        )
    mapped: dict[str, torch.Tensor] = {}
    renamed: list[tuple[str, str]] = []
    for index, (mine, (theirs, tensor)) in enumerate(zip(own_keys, items, strict=True)):
        want = own[mine]
        value = _fit(mine, theirs, tensor, want, classifier)
        if value is None:
            raise LayoutMismatch(
                f"tensor {index} of the file, {theirs} {tuple(tensor.shape)}, does not fit the model's {mine} "
                f"{tuple(want.shape)}"
            )
        mapped[mine] = value
        if mine != theirs:
            renamed.append((theirs, mine))
    for key in own:  # counters the file left out: the model's own (they only steer BN momentum=None)
        mapped.setdefault(key, own[key])
    return mapped, renamed


def _fit(mine: str, theirs: str, tensor: torch.Tensor, want: torch.Tensor, classifier: str) -> torch.Tensor | None:
    if mine.rsplit(".", 1)[-1] != theirs.rsplit(".", 1)[-1]:
        return None
    if tensor.shape == want.shape:
        return tensor
    in_classifier = bool(classifier) and mine.startswith(classifier + ".")
    if in_classifier and tensor.shape[1:] == want.shape[1:]:
        return tensor  # another class count: the transfer loader re-initialises the classifier
    if _is_linear_as_conv(tensor, want):
        return tensor.reshape(want.shape)
    return None


def _is_linear_as_conv(tensor: torch.Tensor, want: torch.Tensor) -> bool:
    """A [out, in, 1, 1] convolution weight for a [out, in] linear one, or the other way round."""
    shapes = {tuple(tensor.shape), tuple(want.shape)}
    if len(shapes) != 2:
        return False
    short, long = sorted(shapes, key=len)
    return len(short) == 2 and len(long) == 4 and long == (*short, 1, 1)
