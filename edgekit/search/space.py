"""The search space: the prunable channel groups of a model, as edgekit's pruner finds them
(torch-pruning's dependency graph, the zoo's ignored layers), and a candidate as one keep ratio per
searchable group from a discrete ladder.

A candidate reaches the pruner as `layer_ratios` naming every conv / linear layer whose output channels
a group prunes (any of them selects the group's ratio in torch-pruning, so naming all is robust to
which one the graph lists first). Groups the search does not vary are named too, at ratio 0: with
every group named, the uniform `ratio` prunes nothing, so the prune stage reproduces the candidate
whatever `prune.ratio` says. `widths` repeats the pruner's arithmetic (torch-pruning's
int(C * (1 - r)) rounded to the nearest multiple of `round_to`, edgekit's per-layer floor) so that candidates giving the
same architecture share one cache entry without pruning anything."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from edgekit.pruning.iterative import traced_pruner
from edgekit.pruning.pruner import nearest_multiple

Genes = Sequence[int] | np.ndarray  # one level index per searched group


@dataclass
class PruneSettings:
    """What edgekit's pruner reads from a prune-stage Config (duck-typed: the stage's Config lives in a
    layer above). Always uniform scope and one step: a per-layer ratio is exact only without global ranking."""

    importance: str = "l2"
    round_to: int = 8
    max_layer_ratio: float = 0.9
    seed: int = 0
    taylor_batches: int = 8
    batch_size: int = 64
    layer_ratios: dict = field(default_factory=dict)
    scope: str = "uniform"
    steps: int = 1
    finetune_batches: int = 0
    finetune_lr: float = 1e-3


@dataclass(frozen=True)
class Group:
    modules: tuple[str, ...]  # layers whose output channels this group prunes, in model order
    channels: int
    searched: bool  # False: no ladder level changes its width (too narrow for round_to, grouped convs)


def ratio_of(keep: float) -> float:
    """The prune ratio written to layer_ratios for a keep ratio (rounded: it is what YAML carries)."""
    return round(1.0 - keep, 6)


def kept_channels(channels: int, ratio: float, round_to: int, max_layer_ratio: float) -> int:
    """Channels the pruner keeps of a `channels`-wide group pruned at `ratio` in one uniform step
    (torch-pruning's BasePruner plus edgekit's FlooredPruner, edgekit/pruning/pruner.py)."""
    ratio = min(ratio, max_layer_ratio)
    keep = int(channels * (1 - ratio))
    if keep >= channels:
        return channels
    step = max(1, round_to)
    keep = nearest_multiple(keep, step, channels)
    floor = max(1, math.ceil(channels * (1 - max_layer_ratio) - 1e-9))
    if keep >= floor:  # floor >= 1: a layer never loses every channel
        return keep
    return min(channels, -(-floor // step) * step)


def keep_levels(min_keep: float, step: float) -> tuple[float, ...]:
    """Keep ratios from `min_keep` to 1.0 in `step` steps, 1.0 always included."""
    n = math.floor((1.0 - min_keep) / step + 1e-9)
    out = {round(1.0 - i * step, 6) for i in range(n + 1)}
    return tuple(sorted(out))


@dataclass
class Space:
    groups: list[Group]
    levels: tuple[float, ...]  # keep ratios, ascending; a gene is an index into it
    round_to: int
    max_layer_ratio: float
    searched: list[int] = field(init=False)

    def __post_init__(self):
        self.searched = [i for i, g in enumerate(self.groups) if g.searched]

    @property
    def n_genes(self) -> int:
        return len(self.searched)

    @property
    def top(self) -> np.ndarray:
        """The unpruned candidate (every gene at keep 1.0)."""
        return np.full(self.n_genes, len(self.levels) - 1, dtype=np.int64)

    def keep(self, genes: Genes) -> list[float]:
        return [self.levels[int(g)] for g in genes]

    def group_ratios(self, genes: Genes) -> list[float]:
        """The prune ratio of every group (unsearched ones 0)."""
        out = [0.0] * len(self.groups)
        for i, g in zip(self.searched, genes, strict=True):
            out[i] = ratio_of(self.levels[int(g)])
        return out

    def widths(self, genes: Genes) -> tuple[int, ...]:
        """Every group's channel count after pruning: the cache key (the architecture a candidate gives)."""
        return tuple(
            kept_channels(g.channels, r, self.round_to, self.max_layer_ratio)
            for g, r in zip(self.groups, self.group_ratios(genes), strict=True)
        )

    def layer_ratios(self, genes: Genes) -> dict[str, float]:
        """`prune.layer_ratios` for a candidate: every module of every group, unsearched ones at 0."""
        return {m: r for g, r in zip(self.groups, self.group_ratios(genes), strict=True) for m in g.modules}

    def describe(self) -> dict:
        return {
            "levels": list(self.levels),
            "round_to": self.round_to,
            "groups": [
                {"modules": list(g.modules), "channels": g.channels, "searched": g.searched} for g in self.groups
            ],
        }


def _channel_groups(pruner, group) -> int:
    get = getattr(pruner, "_get_channel_groups", None)  # torch-pruning's own count (grouped convs)
    return int(get(group)) if get is not None else 1


def build_space(model: nn.Module, input_size, settings: PruneSettings, levels: tuple[float, ...]) -> Space:
    """The groups edgekit's pruner would prune in `model` (a traced copy; the model is not changed)."""
    model = copy.deepcopy(model).eval()
    pruner = traced_pruner(model, settings, 0.0, input_size, 1)
    dg = pruner.DG
    order = {m: i for i, m in enumerate(model.modules())}
    names = {m: n for n, m in model.named_modules()}
    groups = []
    for group in dg.get_all_groups(ignored_layers=pruner.ignored_layers, root_module_types=pruner.root_module_types):
        mods = {
            dep.target.module
            for dep, _ in group
            if dg.is_out_channel_pruning_fn(dep.handler) and isinstance(dep.target.module, (nn.Conv2d, nn.Linear))
        }
        if not mods:
            continue
        ordered = sorted(mods, key=order.__getitem__)
        channels = int(dg.get_out_channels(group[0][0].target.module))
        widths = {kept_channels(channels, ratio_of(k), settings.round_to, settings.max_layer_ratio) for k in levels}
        searched = _channel_groups(pruner, group) == 1 and len(widths) > 1
        groups.append((order[ordered[0]], Group(tuple(names[m] for m in ordered), channels, searched)))
    return Space(
        [g for _, g in sorted(groups, key=lambda t: t[0])], levels, settings.round_to, settings.max_layer_ratio
    )
