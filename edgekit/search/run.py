"""The search loop and its Python entry: build the space, evaluate generation after generation until a
budget is spent (writing the state after each), then pick the best feasible candidate, confirm the
finalists (validation top-1, a longer latency window) and write the result, the recipe and the chart."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

import edgekit.distributed as dist
from edgekit.data.dataset import Dataset
from edgekit.errors import EdgekitError
from edgekit.metrics import count_macs
from edgekit.progress import Progress, fmt_seconds
from edgekit.search.algorithm import Algorithm
from edgekit.search.config import Config
from edgekit.search.evaluator import Evaluator
from edgekit.search.finish import SearchResult, finish
from edgekit.search.ga import GeneticAlgorithm
from edgekit.search.latency import LatencyMeter
from edgekit.search.objective import Objective
from edgekit.search.proxy import Proxy
from edgekit.search.pso import ParticleSwarm
from edgekit.search.random_search import RandomSearch
from edgekit.search.space import PruneSettings, Space, build_space, keep_levels
from edgekit.search.spread import Spread
from edgekit.search.state import STATE_FILE, fingerprint, load_state, save_state

log = logging.getLogger(__name__)

ALGORITHMS: dict[str, type[Algorithm]] = {"ga": GeneticAlgorithm, "pso": ParticleSwarm, "random": RandomSearch}


def run_search(
    model: nn.Module,
    data: Dataset,
    target_latency_ms: float | None = None,
    target_macs: float | None = None,
    algorithm: str = "ga",
    budget_evals: int = 60,
    budget_minutes: float | None = None,
    seed: int = 0,
    out_dir: str | Path = "search",
    round_to: int = 8,
    base_recipe: Any = None,
    resume: bool = False,
    **settings: Any,
) -> SearchResult:
    """Search per-group keep ratios of a trained `model` on `data` that maximise the accuracy proxy under
    the target(s). `settings`: any other Config field (population, min_keep, latency_window_s, ...).
    `base_recipe`: a Recipe or recipe mapping the written recipe starts from. `resume`: continue from
    out_dir's state file (the same settings; a larger budget extends a finished search)."""
    cfg = Config(
        algorithm=algorithm,  # type: ignore[arg-type]  # checked by Config's Literal where a recipe builds it
        target_latency_ms=target_latency_ms,
        target_macs=target_macs,
        budget_evals=budget_evals,
        budget_minutes=budget_minutes,
        seed=seed,
        round_to=round_to,
        **settings,
    )
    return search(model, data, cfg, Path(out_dir), base_recipe=base_recipe, resume=resume)


def _settings(cfg: Config) -> PruneSettings:
    return PruneSettings(
        importance=cfg.importance,
        round_to=cfg.round_to,
        max_layer_ratio=cfg.max_layer_ratio,
        seed=cfg.seed,
        taylor_batches=cfg.taylor_batches,
        batch_size=cfg.batch_size,
    )


def _best_line(algo: Algorithm, evaluator: Evaluator, objective: Objective) -> str:
    rec = evaluator.cached(algo.best_genes) if algo.best_genes is not None else None
    if rec is None:
        return "nothing evaluated"
    lat = f"{rec.latency_ms:.3f} ms, " if rec.latency_ms is not None else ""
    what = (
        "best" if objective.feasible(rec) else f"none feasible yet, closest (violation {objective.violation(rec):.3f})"
    )
    return f"{what} top1 {rec.proxy_top1:.4f} at {lat}MACs {rec.macs_fraction:.3f}"


def _check_reach(evaluator: Evaluator, space: Space, cfg: Config, target: float) -> None:
    """A MACs target the most pruned candidate misses is an error now, not a search that finds nothing."""
    low = evaluator.pruned(np.zeros(space.n_genes, dtype=np.int64), prepare=False)
    fraction = count_macs(low, evaluator.input_size) / evaluator.base_macs
    if fraction > target:
        raise EdgekitError(
            f"search.target_macs {target} is out of reach: every searched layer at keep {space.levels[0]} "
            f"keeps {fraction:.3f} of the baseline MACs (layers round_to {cfg.round_to} cannot narrow, the classifier "
            f"and ignored layers stay): ask for >= {math.ceil(fraction * 1000) / 1000}, or lower search.round_to or "
            "search.min_keep"
        )


def _generation(
    algo: Algorithm,
    evaluator: Evaluator,
    objective: Objective,
    spent: Callable[[], str | None],
    bar: Progress,
    spread: Spread | None = None,
    budget_evals: int = 0,
) -> int:
    """Ask for a generation, evaluate it (cache hits are free), tell the fitness; returns how many were new.
    With `spread` (a distributed run) the generation's new candidates are evaluated across the ranks."""
    if spread is not None:
        return _spread_generation(algo, evaluator, objective, spent, bar, spread, budget_evals)
    fitness, new = [], 0
    for genes in algo.ask():
        hit = evaluator.cached(genes) is not None
        if not hit and spent() is not None:
            fitness.append(-np.inf)  # the budget ran out inside this generation: left unevaluated
            continue
        rec = evaluator(genes)
        if not hit:
            new += 1
            bar.update(1, top1=rec.proxy_top1)
        fitness.append(objective.fitness(rec))
    algo.tell(fitness)
    return new


def _spread_generation(
    algo: Algorithm,
    evaluator: Evaluator,
    objective: Objective,
    spent: Callable[[], str | None],
    bar: Progress,
    spread: Spread,
    budget_evals: int,
) -> int:
    """_generation across the ranks: the new architectures (first appearance, in order) up to the
    evaluation budget are scored together; the minutes budget is checked once, before them."""
    asked = list(algo.ask())
    keys = [evaluator.space.widths(genes) for genes in asked]  # the architectures: the cache's keys
    fresh: dict[tuple[int, ...], Any] = {}
    for key, genes in zip(keys, asked, strict=True):
        if key not in evaluator.cache and key not in fresh:
            fresh[key] = genes
    room = 0 if spent() == "budget_minutes" else max(0, budget_evals - evaluator.evaluations)
    chosen = list(fresh.values())[:room]
    for made in spread.evaluate(chosen):
        bar.update(1, top1=made.proxy_top1)
    fitness, scored = [], set()
    for key in keys:
        rec = evaluator.cache.get(key)
        if rec is None:  # the budget ran out inside this generation: left unevaluated
            fitness.append(-np.inf)
            continue
        if key in fresh and key not in scored:
            scored.add(key)  # its evaluation, above
        else:
            evaluator.hits += 1  # counted as the one-process loop counts cache hits
        fitness.append(objective.fitness(rec))
    algo.tell(fitness)
    return len(chosen)


def search(
    model: nn.Module, data: Dataset, cfg: Config, out_dir: Path, base_recipe: Any = None, resume: bool = False
) -> SearchResult:
    """run_search on a Config (what a recipe section will call)."""
    cfg.check_target()
    if cfg.algorithm not in ALGORITHMS:
        raise EdgekitError(f"search.algorithm {cfg.algorithm!r} is unknown: use one of {', '.join(ALGORITHMS)}")
    input_size = data.input_size
    settings = _settings(cfg)
    space = build_space(model, input_size, settings, keep_levels(cfg.min_keep, cfg.keep_step))
    if space.n_genes == 0:
        raise EdgekitError(
            f"search: no layer of this model can be narrowed at round_to {cfg.round_to} and min_keep {cfg.min_keep}: "
            "lower search.round_to or search.min_keep"
        )
    proxy = Proxy(
        data, cfg.proxy_images, cfg.bn_images, cfg.batch_size, cfg.seed, cfg.finetune_batches, cfg.finetune_lr
    )
    meter = (
        LatencyMeter(input_size, cfg.latency_window_s, cfg.latency_warmup_s, cfg.latency_min_runs, cfg.opset, cfg.seed)
        if cfg.measures_latency
        else None
    )
    evaluator = Evaluator(model, space, settings, input_size, proxy, meter)
    if cfg.target_macs is not None:
        _check_reach(evaluator, space, cfg, cfg.target_macs)
    algo = ALGORITHMS[cfg.algorithm](space.levels, space.n_genes, cfg, np.random.default_rng(cfg.seed))
    out_dir.mkdir(parents=True, exist_ok=True)
    state_path = out_dir / STATE_FILE
    fp = fingerprint(cfg, space)
    progress: dict[str, Any] = {"seconds": 0.0, "stall": 0, "history": [], "reference_ms": None}
    saved = load_state(state_path, fp) if resume else None
    if saved is not None:
        algo.restore(saved["algorithm"])
        evaluator.restore(saved["records"], saved["progress"]["hits"], saved["progress"]["cost"])
        progress = {k: saved["progress"][k] for k in progress}
        log.info(
            f"search: resuming {state_path} after generation {algo.generation}, {evaluator.evaluations} evaluations"
        )
    elif state_path.exists():
        log.info(f"search: {state_path} is replaced (pass resume=True to continue it)")
    if meter is not None and cfg.latency_reference:  # a resumed search keeps its records' scale
        progress["reference_ms"] = meter.set_reference(model, cfg.reference_latency_s, progress["reference_ms"])
    target_ms = cfg.target_latency_ms
    if cfg.target_latency_ratio is not None:  # on the search's scale: the unpruned model timed as the candidates are
        target_ms = round(cfg.target_latency_ratio * progress["reference_ms"], 4)
    objective = Objective(target_ms, cfg.target_macs)
    log.info(
        f"search {cfg.algorithm}: {space.n_genes} of {len(space.groups)} groups searched, {len(space.levels)} keep "
        f"levels {space.levels[0]}..{space.levels[-1]}, proxy on {proxy.images} held-out training images, target "
        f"{objective.target()}"
    )
    start, before = time.perf_counter(), progress["seconds"]

    def elapsed() -> float:
        return before + time.perf_counter() - start

    def spent() -> str | None:
        if evaluator.evaluations >= cfg.budget_evals:
            return "budget_evals"
        if cfg.budget_minutes is not None and elapsed() >= 60 * cfg.budget_minutes:
            return "budget_minutes"
        return None

    bar = Progress(f"search {cfg.algorithm}", max(0, cfg.budget_evals - evaluator.evaluations), unit="eval")
    spread = Spread(evaluator) if dist.world_size() > 1 else None  # candidates scored across the ranks
    stopped = None
    while stopped is None:
        stopped = spent()
        if stopped is None and cfg.max_generations is not None and algo.generation >= cfg.max_generations:
            stopped = "max_generations"
        if stopped is None and progress["stall"] >= cfg.stall_generations:
            stopped = "stalled"
        if stopped is not None:
            break
        new = _generation(algo, evaluator, objective, spent, bar, spread, cfg.budget_evals)
        progress["stall"] = 0 if new else progress["stall"] + 1
        progress["history"].append(
            {
                "generation": algo.generation,
                "evaluations": evaluator.evaluations,
                "new": new,
                "seconds": round(elapsed(), 2),
            }
        )
        log.info(
            f"search {cfg.algorithm} generation {algo.generation}: {_best_line(algo, evaluator, objective)}; "
            f"{evaluator.evaluations}/{cfg.budget_evals} evaluations ({new} new), {fmt_seconds(elapsed())}"
        )
        save_state(
            state_path,
            fp,
            algo.state(),
            [r.to_dict() for r in evaluator.records()],
            {**progress, "seconds": round(elapsed(), 3), "hits": evaluator.hits, "cost": evaluator.cost},
        )
    return finish(
        model, cfg, space, settings, objective, evaluator, algo.generation, stopped, elapsed(), out_dir, base_recipe
    )
