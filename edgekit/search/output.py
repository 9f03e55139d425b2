"""What a search writes: the result JSON and a recipe that `edgekit run` takes (the base recipe with the
chosen candidate as the prune section, and without the search section, so the recipe reproduces the
chosen model instead of searching again).

The written prune section has `ratio: 0` and every searched group in `layer_ratios`: the prune stage
runs on layer ratios alone and prunes exactly those layers (edgekit/stages/prune.py `runs`). The
library layer cannot import edgekit.recipe; the tree is written with `yaml.safe_dump` in
`edgekit.recipe.dump`'s format, and `edgekit.recipe.from_dict` validates it (tests do)."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import yaml

from edgekit.fileio import atomic_write_text
from edgekit.search.space import PruneSettings


def prune_section(settings: PruneSettings, layer_ratios: dict[str, float]) -> dict[str, Any]:
    """The prune keys a chosen candidate sets (the rest of the base recipe's prune section stays)."""
    return {
        "ratio": 0.0,
        "layer_ratios": dict(layer_ratios),
        "importance": settings.importance,
        "round_to": settings.round_to,
        "scope": "uniform",  # a layer ratio is exact only without global ranking
        "max_layer_ratio": settings.max_layer_ratio,
        "seed": settings.seed,
        "target_macs": None,
        "target_latency_ms": None,
    }


def recipe_tree(base: Any, section: dict[str, Any]) -> dict[str, Any]:
    """`base` (a Recipe dataclass, a recipe mapping, or None) with `section` merged into its prune section."""
    if base is None:
        tree: dict[str, Any] = {}
    elif dataclasses.is_dataclass(base) and not isinstance(base, type):
        tree = dataclasses.asdict(base)
    else:
        tree = copy.deepcopy(dict(base))
    tree["prune"] = {**(tree.get("prune") or {}), **section}
    tree.pop("search", None)  # the recipe reproduces the chosen model; it does not search again
    return tree


def write_recipe(path: Path, tree: dict[str, Any], header: str) -> None:
    lines = "".join(f"# {line}\n" for line in header.splitlines())
    atomic_write_text(path, lines + yaml.safe_dump(tree, sort_keys=False, default_flow_style=False))
