"""Importance criteria: which channels a pruning step removes.

l1 / l2: group magnitude (the norm of every weight a channel touches across the coupled layers).
bn_scale: |gamma| of the group's BatchNorm layers (network slimming); needs BatchNorm layers.
taylor: first-order Taylor |w * dL/dw| summed over the group; needs gradients, so `taylor_gradients`
runs a few cross-entropy backward passes on training data before each pruning step.
random: a control criterion (seeded), useful to check that a criterion beats chance."""

from __future__ import annotations

import torch
from torch import nn

from edgekit.data.transforms import normalize
from edgekit.errors import EdgekitError

NAMES = ("l2", "l1", "bn_scale", "taylor", "random")


def make_importance(name: str):
    import torch_pruning as tp

    if name == "l2":
        return tp.importance.GroupMagnitudeImportance(p=2)
    if name == "l1":
        return tp.importance.GroupMagnitudeImportance(p=1)
    if name == "bn_scale":
        return tp.importance.BNScaleImportance()
    if name == "taylor":
        return tp.importance.GroupTaylorImportance()
    if name == "random":
        return tp.importance.RandomImportance()
    raise EdgekitError(f"unknown prune.importance {name!r}: use one of {', '.join(NAMES)}")


def needs_gradients(name: str) -> bool:
    return name == "taylor"


def check_applicable(name: str, model: nn.Module) -> None:
    if name == "bn_scale" and not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        raise EdgekitError("prune.importance bn_scale needs BatchNorm layers and this model has none: use l2 or taylor")


def taylor_gradients(model: nn.Module, data, batches: int, batch_size: int, seed: int) -> None:
    """Fill `.grad` of every parameter with the summed cross-entropy gradient of `batches` training
    batches (seeded sample). The model stays in eval mode, so BatchNorm statistics and weights are
    untouched: only the gradients change."""
    if data is None:
        raise EdgekitError(
            "prune.importance taylor needs training data for its gradients: run it through the pipeline or use l2"
        )
    gen = torch.Generator().manual_seed(seed)
    n = len(data.train)
    model.eval()
    model.zero_grad(set_to_none=True)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(batches):
        idx = torch.randint(0, n, (min(batch_size, n),), generator=gen)
        x = normalize(data.train.images[idx], data.mean, data.std)
        loss_fn(model(x), data.train.labels[idx]).backward()
