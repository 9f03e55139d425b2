"""The end of a search: the Pareto front of everything evaluated, the finalists (the best feasible
candidates by proxy, re-built, scored on the validation split and re-timed over a longer window), the
chosen one (the best finalist that still meets the target), and the files: result JSON, recipe, chart."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

import edgekit.distributed as dist
from edgekit.fileio import atomic_write_json, atomic_write_text
from edgekit.search.config import Config
from edgekit.search.evaluator import Evaluator
from edgekit.search.fill import fill
from edgekit.search.objective import Objective
from edgekit.search.output import prune_section, recipe_tree, write_recipe
from edgekit.search.pareto import pareto_front
from edgekit.search.record import Record
from edgekit.search.space import PruneSettings, Space
from edgekit.search.state import STATE_FILE

log = logging.getLogger(__name__)

RESULT_FILE, RECIPE_FILE, CHART_FILE = "search.json", "search_recipe.yaml", "search_front.svg"


@dataclass
class SearchResult:
    algorithm: str
    seed: int
    evaluations: int
    generations: int
    seconds: float
    stopped_by: str
    chosen: dict | None  # a record plus layer_ratios, val_top1, final latency; None when nothing was feasible
    front: list[dict]
    data: dict = field(repr=False)  # everything written to search.json
    result_path: Path | None = None
    recipe_path: Path | None = None
    chart_path: Path | None = None
    state_path: Path | None = None

    @property
    def layer_ratios(self) -> dict[str, float]:
        return dict(self.chosen["layer_ratios"]) if self.chosen else {}


def _confirm(cfg: Config, evaluator: Evaluator, objective: Objective, rec: Record) -> dict:
    """A finalist re-built, scored on the validation split and (with a latency meter) re-timed longer."""
    model = evaluator.pruned(rec.genes)
    out: dict[str, Any] = {**rec.to_dict(), "val_top1": evaluator.proxy.val_top1(model)}
    if evaluator.meter is not None:
        ms = round(evaluator.meter(model, window_s=cfg.final_latency_s), 4)
        out["final_latency_ms"] = ms
        out["confirmed"] = objective.feasible(dataclasses.replace(rec, latency_ms=ms))
    else:
        out["confirmed"] = True
    return out


def _choose(
    cfg: Config, space: Space, evaluator: Evaluator, objective: Objective, records: list[Record]
) -> tuple[list[dict], dict | None]:
    """The finalists (best feasible by proxy) and the chosen one: the best finalist still feasible when
    re-timed, else the best finalist (flagged unconfirmed), else None."""
    feasible = sorted(
        (r for r in records if objective.feasible(r)), key=lambda r: (-r.proxy_top1, objective.cost(r), r.index)
    )
    finalists = [_confirm(cfg, evaluator, objective, r) for r in feasible[: cfg.finalists]]
    confirmed = [f for f in finalists if f["confirmed"]]
    chosen = confirmed[0] if confirmed else (finalists[0] if finalists else None)
    if chosen is None:
        log.warning(f"search: no evaluated candidate meets {objective.target()}: raise the budget or loosen the target")
        return finalists, None
    chosen["layer_ratios"] = space.layer_ratios(chosen["genes"])
    if not chosen["confirmed"]:
        log.warning(
            "search: no finalist met the latency target when re-timed (measurement noise near the target); the best "
            "one is reported with confirmed: false"
        )
    return finalists, chosen


def _filled(
    cfg: Config, space: Space, evaluator: Evaluator, objective: Objective, start: Record, chosen: dict
) -> tuple[dict, dict]:
    """The chosen candidate grown to fill the target (search/fill.py), confirmed as every finalist is;
    the chosen one unchanged when growing gave nothing the proxy ranks as high or the re-timing refuses."""
    t0 = time.perf_counter()
    rec, info = fill(evaluator, objective, space, start, cfg.fill_steps, cfg.fill_margin)
    if rec is not start:
        grown = _confirm(cfg, evaluator, objective, rec)
        info["confirmed"] = grown["confirmed"]
        if grown["confirmed"]:
            grown["layer_ratios"] = space.layer_ratios(grown["genes"])
            grown["grown_from"] = start.index
            chosen = grown
        else:
            log.info("search: the filled candidate missed the target when re-timed; keeping the chosen one")
            info["to"] = start.index
    info["seconds"] = round(time.perf_counter() - t0, 2)
    return chosen, info


def finish(
    model: nn.Module,
    cfg: Config,
    space: Space,
    settings: PruneSettings,
    objective: Objective,
    evaluator: Evaluator,
    generations: int,
    stopped: str,
    seconds: float,
    out_dir: Path,
    base_recipe: Any,
) -> SearchResult:
    records = evaluator.records()
    evaluations = evaluator.evaluations  # the search's own: the fill's are counted apart
    points = [(objective.cost(r), r.proxy_top1) for r in records]
    front = [records[i] for i in pareto_front(points)]
    finalists, chosen = _choose(cfg, space, evaluator, objective, records)
    filled = None
    if cfg.fill_steps and chosen is not None and chosen["confirmed"]:
        chosen, filled = _filled(cfg, space, evaluator, objective, records[chosen["index"]], chosen)
    base = evaluator.cached(space.top)
    baseline = None
    if base is not None:  # scored as the candidates are (recalibrated), and as given
        val = evaluator.proxy.val_top1(evaluator.pruned(base.genes))
        baseline = {**base.to_dict(), "val_top1": val, "val_top1_as_given": evaluator.proxy.val_top1(model)}
    result: dict[str, Any] = {
        "algorithm": cfg.algorithm,
        "seed": cfg.seed,
        "target": objective.target(),
        "axis": objective.axis,
        "budget": {"evaluations": cfg.budget_evals, "minutes": cfg.budget_minutes, "generations": cfg.max_generations},
        "evaluations": evaluations,
        "generations": generations,
        "seconds": round(seconds, 2),
        "stopped_by": stopped,
        "search_cost": {
            "seconds": round(seconds, 2),
            "evaluations": evaluations,
            "cache_hits": evaluator.hits,
            "seconds_per_evaluation": round(seconds / max(1, evaluations), 3),
            "ranks": dist.world_size(),  # candidates were scored across this many processes (search/spread.py)
            **{k: round(v, 2) for k, v in evaluator.cost.items()},
        },
        "proxy": {"held_out_training_images": evaluator.proxy.images, "bn_images": cfg.bn_images},
        "latency": (
            {
                "backend": "onnxruntime cpu, 1 thread, batch 1, p50",
                "window_s": cfg.latency_window_s,
                "reference_ms": evaluator.meter.reference_ms,  # None: plain windows, no interleaved reference
            }
            if evaluator.meter is not None
            else None
        ),
        "space": space.describe(),
        "baseline": baseline,
        "chosen": chosen,
        "fill": filled,
        "finalists": finalists,
        "front": [r.to_dict() for r in front],
        "uniform": [r.to_dict() for r in records if r.uniform],
        "evaluated": [r.to_dict() for r in records],
        "settings": dataclasses.asdict(cfg),
    }
    res = SearchResult(
        cfg.algorithm,
        cfg.seed,
        evaluations,
        generations,
        round(seconds, 2),
        stopped,
        chosen,
        result["front"],
        result,
        state_path=out_dir / STATE_FILE,
    )
    if chosen is not None:
        res.recipe_path = out_dir / RECIPE_FILE
        header = (
            f"edgekit search ({cfg.algorithm}, seed {cfg.seed}, {evaluations} evaluations), target "
            f"{objective.target()}: proxy top-1 {chosen['proxy_top1']}, MACs {chosen['macs_fraction']} of the baseline"
            "\nprune.layer_ratios names every searched layer (prune.ratio 0: no other layer is pruned)"
        )
        write_recipe(res.recipe_path, recipe_tree(base_recipe, prune_section(settings, chosen["layer_ratios"])), header)
        result["recipe"] = str(res.recipe_path)
    res.chart_path = _chart(out_dir / CHART_FILE, points, [r.index for r in front], objective, records, chosen)
    res.result_path = out_dir / RESULT_FILE
    atomic_write_json(res.result_path, result)
    return res


def _chart(path: Path, points, front, objective: Objective, records: list[Record], chosen: dict | None) -> Path | None:
    from edgekit.search.chart import front_svg

    target = objective.target_latency_ms if objective.axis == "latency_ms" else objective.target_macs
    uniform = [points[i] for i, r in sorted(enumerate(records), key=lambda t: t[1].keep[:1]) if r.uniform]
    mark = (chosen[objective.axis], chosen["proxy_top1"]) if chosen else None  # axis: the record's cost field
    try:
        atomic_write_text(path, front_svg(points, front, objective.axis, target, uniform, mark))
    except ImportError as exc:  # matplotlib is a dependency, but the result matters more than the picture
        log.warning(f"search: no chart ({exc}); pip install matplotlib")
        return None
    return path
