"""prune: structured channel pruning with torch-pruning's dependency graph.

`ratio` is the fraction of channels removed from every prunable layer (torch-pruning's
`pruning_ratio`): 0.3 keeps 70% of each layer's channels, which cuts params and MACs by roughly half
(both scale with in x out channels). Coupled layers (residual adds, depthwise convs, SE gates) are
pruned together as one group; the classifier and the layers a model lists in
`pruning_ignored_layers()` keep their output channels.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch

from edgekit.artifact import Artifact, ModelEntry
from edgekit.checkpoint import save_state_dict
from edgekit.config import ranged
from edgekit.metrics import count_macs, count_params

NAME = "prune"
SECTION = "prune"


@dataclass
class Config:
    """`ratio`: fraction of each prunable layer's channels to remove, in [0, 1); 0 skips pruning.
    `importance`: group magnitude criterion, l2 (default) or l1. `round_to`: keep channel counts a
    multiple of this (8 by default: odd counts run slower in ONNX Runtime); 1 disables rounding."""

    ratio: float = ranged(0.0, 0.0, 1.0, hi_inclusive=False)
    importance: Literal["l2", "l1"] = "l2"
    round_to: int = ranged(8, 1, 256)


def skip(art, cfg: Config, ctx) -> str | None:
    return "prune.ratio is 0" if cfg.ratio == 0 else None


def prune_model(model: torch.nn.Module, cfg: Config, input_size: tuple[int, ...]) -> torch.nn.Module:
    import torch_pruning as tp

    model = copy.deepcopy(model).eval()
    example = torch.zeros(1, *input_size)
    importance = tp.importance.GroupMagnitudeImportance(p=2 if cfg.importance == "l2" else 1)
    options = dict(model.pruning_options()) if hasattr(model, "pruning_options") else {}
    ignored = list(model.pruning_ignored_layers()) + list(options.pop("ignored_layers", []))
    pruner = tp.pruner.MagnitudePruner(
        model,
        example,
        importance=importance,
        pruning_ratio=cfg.ratio,
        ignored_layers=ignored,
        round_to=cfg.round_to if cfg.round_to > 1 else None,
        **options,
    )
    pruner.step()
    return model


def run(art: Artifact, cfg: Config, ctx) -> dict:
    base = art.entries["baseline"]
    model = prune_model(base.module, cfg, ctx.data.input_size)
    path = ctx.run_dir / "pruned.pt"
    save_state_dict(model, path)
    entry = art.add(ModelEntry("pruned", "torch", "fp32", count_params(model), count_macs(model, ctx.data.input_size), path, model))
    return {
        "params_before": base.params,
        "params_after": entry.params,
        "macs_before": base.macs,
        "macs_after": entry.macs,
        "macs_reduction": round(1 - entry.macs / base.macs, 4),
        "params_reduction": round(1 - entry.params / base.params, 4),
    }
