"""Backends run a model on numpy inputs and are timed and evaluated the same way (Polygraphy's habit:
every runner is fed the same inputs). Heavy imports happen inside each backend, never at import time."""

from __future__ import annotations

from edgekit.backends.base import Runner
from edgekit.backends.measure import evaluate, measure_interleaved, measure_latency, measure_throughput, throughput_of

__all__ = ["Runner", "evaluate", "measure_interleaved", "measure_latency", "measure_throughput", "throughput_of"]
