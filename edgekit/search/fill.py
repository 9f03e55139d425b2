"""Filling the target: the chosen candidate grown toward the unpruned model, each searched group by the
same fraction `t` of the levels it has left, as far as the target allows.

Why: a search returns the candidate its proxy ranks first, and the proxy (a pruned copy scored after
BatchNorm recalibration, no fine-tune) is noisy enough that this candidate can sit well under the target:
GA's choices in bench/search.py ran at 0.86x the latency of the uniform model they were asked to match.
The latency left unused is channels given away. Growing every group by the same fraction keeps the
per-layer shape the search found; a bisection over `t` (each step one measured evaluation) finds the
largest grown candidate that meets the target with `margin` to spare, so the final, longer re-timing
still finds it feasible. It replaces the chosen candidate only when the proxy ranks it no lower."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from edgekit.search.evaluator import Evaluator
from edgekit.search.objective import Objective
from edgekit.search.record import Record
from edgekit.search.space import Space

log = logging.getLogger(__name__)


def grown(genes: list[int] | np.ndarray, top: np.ndarray, t: float) -> np.ndarray:
    """`genes` moved the fraction `t` of the way to `top` (the unpruned levels), rounded down per group."""
    g = np.asarray(genes, dtype=np.int64)
    return g + np.floor(t * (top - g) + 1e-9).astype(np.int64)


def aim(objective: Objective, margin: float) -> Objective:
    """The objective with its latency target lowered by `margin` (MACs are counted exactly: no margin)."""
    if objective.target_latency_ms is None:
        return objective
    return dataclasses.replace(objective, target_latency_ms=objective.target_latency_ms * (1 - margin))


def fill(
    evaluator: Evaluator, objective: Objective, space: Space, start: Record, steps: int, margin: float
) -> tuple[Record, dict]:
    """The largest grown candidate (bisection over t in (0, 1], `steps` evaluations at most) that meets
    the target less `margin` and that the proxy ranks no lower than `start`; `start` when none does.
    Returns it with what was tried (t, cost, proxy, feasible) for the result file."""
    goal = aim(objective, margin)
    lo, hi, best = 0.0, 1.0, start
    tried: list[dict] = []
    seen: set[tuple[int, ...]] = {space.widths(start.genes)}
    for _ in range(steps):
        t = (lo + hi) / 2
        genes = grown(start.genes, space.top, t)
        key = space.widths(genes)
        if key in seen:  # rounding gave an architecture already tried: look further up
            lo = t
            continue
        seen.add(key)
        rec = evaluator(genes)
        ok = goal.feasible(rec)
        tried.append(
            {
                "t": round(t, 4),
                "index": rec.index,
                "cost": objective.cost(rec),
                "macs_fraction": rec.macs_fraction,
                "proxy_top1": rec.proxy_top1,
                "feasible": ok,
            }
        )
        if ok:
            lo = t
            if rec.proxy_top1 >= start.proxy_top1:
                best = rec
        else:
            hi = t
    if best is not start:
        log.info(
            f"search: filled the target: candidate {start.index} grown to {best.index} (cost "
            f"{objective.cost(start)} -> {objective.cost(best)}, proxy {start.proxy_top1} -> {best.proxy_top1})"
        )
    info = {"from": start.index, "to": best.index, "margin": margin, "evaluations": len(tried), "tried": tried}
    return best, info
