"""search: per-layer keep ratios found by a genetic algorithm, particle swarm optimisation or random
search (the control) under a latency or MACs target (edgekit.search), then the baseline pruned to the
chosen ratios exactly as the prune stage prunes `prune.layer_ratios` (so the prune stage skips).

The stage runs only when the recipe's `search` section has a target. Its files go to `search/` in the run
folder: search.json (every candidate, the Pareto front, the finalists, the search's cost), the front's
chart, the resumable state, and search_recipe.yaml: this run's recipe with the chosen layer ratios and no
search section, which `edgekit run` reproduces without searching again. A run cut off mid-search
resumes from the last finished generation (`edgekit run --resume`).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from edgekit.artifact import Artifact, Role
from edgekit.errors import EdgekitError
from edgekit.search import Config, search
from edgekit.search.output import prune_section
from edgekit.search.space import PruneSettings
from edgekit.stages.base import Stage, register
from edgekit.stages.context import Context
from edgekit.stages.prune import Config as PruneConfig, add_pruned, prune_with_info, runs

log = logging.getLogger(__name__)

SEARCH_DIR = "search"


def searches(cfg: Config) -> bool:
    return cfg.latency_target or cfg.target_macs is not None


def prunes(recipe: Any) -> bool:
    """Whether a run of `recipe` prunes: a prune ratio, target or layer ratios, or a search target."""
    return runs(recipe.prune) or searches(recipe.search)


def skip(art: Artifact, cfg: Config, ctx: Context) -> str | None:
    return None if searches(cfg) else "no search target (search.target_latency_ms, target_latency_ratio or target_macs)"


def chosen_prune_config(recipe: Any, cfg: Config, layer_ratios: dict[str, float]) -> PruneConfig:
    """The recipe's prune section with the chosen candidate in it: what search_recipe.yaml holds."""
    settings = PruneSettings(
        importance=cfg.importance, round_to=cfg.round_to, max_layer_ratio=cfg.max_layer_ratio, seed=cfg.seed
    )
    out = copy.copy(recipe.prune)
    for key, value in prune_section(settings, layer_ratios).items():
        setattr(out, key, value)
    return out


def _front(result: dict) -> dict:
    """The Pareto front (a mapping: report.md's one-line stage summary leaves it out, report.json keeps it)."""
    keys = ("index", "keep", "macs_fraction", "latency_ms", "proxy_top1")
    return {"axis": result["axis"], "points": [{k: r.get(k) for k in keys} for r in result["front"]]}


def run(art: Artifact, cfg: Config, ctx: Context) -> dict:
    base = art[Role.BASELINE]
    assert base.module is not None
    out_dir = ctx.run_dir / SEARCH_DIR
    # resume=True: a state file exists only when this run was cut off mid-search; it continues from there.
    res = search(base.module, ctx.data, cfg, out_dir, base_recipe=ctx.recipe, resume=True)
    chosen = res.chosen
    if chosen is None:
        raise EdgekitError(
            f"search: no candidate of {res.evaluations} evaluated met the target (see {res.result_path}): raise "
            "search.budget_evals, loosen the target, or lower search.min_keep"
        )
    cfg_prune = chosen_prune_config(ctx.recipe, cfg, chosen["layer_ratios"])
    model, _ = prune_with_info(base.module, cfg_prune, ctx.data.input_size, ctx.data, ctx.recipe.export.opset)
    sizes = add_pruned(art, model, ctx)
    data = res.data
    log.info(
        f"search: chose candidate {chosen['index']} (proxy top-1 {chosen['proxy_top1']:.4f}, validation top-1 "
        f"{chosen['val_top1']:.4f}, MACs {chosen['macs_fraction']:.3f} of the baseline"
        + (f", {chosen['final_latency_ms']} ms" if "final_latency_ms" in chosen else "")
        + (f"; grown from candidate {chosen['grown_from']} to fill the target" if "grown_from" in chosen else "")
        + f"); reproduce it with `edgekit run {res.recipe_path}`"
    )
    return {
        "algorithm": cfg.algorithm,
        "target": data["target"],
        "evaluations": res.evaluations,
        "generations": res.generations,
        "stopped_by": res.stopped_by,
        "chosen_val_top1": chosen["val_top1"],
        "baseline_val_top1": (data["baseline"] or {}).get("val_top1"),
        "search_cost": data["search_cost"],
        "chosen": {
            k: chosen.get(k)
            for k in ("index", "proxy_top1", "val_top1", "macs_fraction", "final_latency_ms", "grown_from")
        },
        "fill": {k: v for k, v in (data.get("fill") or {}).items() if k != "tried"} or None,
        "front": _front(data),
        "files": {
            name: str(p.relative_to(ctx.run_dir))
            for name, p in (("result", res.result_path), ("recipe", res.recipe_path), ("chart", res.chart_path))
            if p is not None
        },
        "layer_ratios": chosen["layer_ratios"],
        **sizes,
    }


STAGE = register(
    Stage(
        name="search",
        section="search",
        config=Config,
        run=run,
        skip=skip,
        consumes=(Role.BASELINE,),
        produces=(Role.PRUNED,),
    )
)
