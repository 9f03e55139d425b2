"""Latency- or MACs-aware compression search: per-layer pruning ratios found by a genetic algorithm,
particle swarm optimisation or random search (the control), one purpose per module:

- `config`: `Config`, every setting (a recipe section later);
- `space`: the prunable groups (edgekit's pruner's dependency graph) and a candidate's widths and layer_ratios;
- `latency`: direct ONNX Runtime CPU measurement (batch 1, 1 thread, p50) of an exported candidate;
- `proxy`: top-1 on held-out training images after BatchNorm recalibration;
- `evaluator`: prune + measure + score, cached by the candidate's channel widths;
- `objective`: fitness under the target(s), a constrained ranking;
- `algorithm` (the ask/tell interface, the shared first generation), `ga`, `pso`, `random_search`;
- `state`: the resumable state file; `pareto`: the front; `chart`: its SVG; `output`: the recipe;
- `run`: the loop and the Python entry, `run_search`; `finish`: finalists, chosen, result JSON and files.

Not built yet: a per-layer latency lookup table (time each layer at the widths it can take, sum, check
against whole-model measurements on a few candidates, use it only under an error threshold). Every
candidate is measured directly; the cache keeps a repeated architecture from being measured twice."""

from __future__ import annotations

from edgekit.search.config import Config
from edgekit.search.finish import SearchResult
from edgekit.search.pareto import pareto_front
from edgekit.search.run import ALGORITHMS, run_search, search

__all__ = ["ALGORITHMS", "Config", "SearchResult", "pareto_front", "run_search", "search"]
