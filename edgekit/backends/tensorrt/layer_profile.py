"""Per-layer times of a TensorRT engine through TensorRT's IProfiler.

UNVERIFIED: written against TensorRT 10's documented Python API (a subclass of `trt.IProfiler` that calls
the base __init__ and overrides `report_layer_time(layer_name, ms)`, set as `IExecutionContext.profiler`;
TensorRT then reports every layer once per execute_v2/enqueue_v3, enqueue emitting the profile by default)
and tested only with a fake module. Layer names are the network's (TensorRT's default profiling
verbosity, LAYER_NAMES_ONLY; an engine built with NONE reports layer indices, which match no node).

Nothing here imports tensorrt: `attach` takes the module the runner loaded."""

from __future__ import annotations

import time
from typing import Any

import numpy as np


class LayerTimes:
    """Layer times per run: `start_run()` before each inference, TensorRT's reports land in that run."""

    def __init__(self) -> None:
        self.runs: list[dict[str, float]] = []
        self.profiler: Any = None  # the IProfiler object, kept alive as long as this
        self.errors = 0

    def start_run(self) -> None:
        self.runs.append({})

    def report(self, layer_name: str, ms: float) -> None:
        # Called from TensorRT's C++: nothing may escape (its callbacks are noexcept).
        try:
            if not self.runs:
                self.start_run()
            self.runs[-1][layer_name] = self.runs[-1].get(layer_name, 0.0) + float(ms)
        except Exception:
            self.errors += 1

    def per_layer(self, skip: int = 0) -> dict[str, list[float]]:
        """layer -> its time in each run after the first `skip`, in the order layers were first reported."""
        kept = self.runs[skip:]
        names = dict.fromkeys(name for run in kept for name in run)
        return {name: [run.get(name, 0.0) for run in kept] for name in names}


def attach(trt: Any, context: Any) -> LayerTimes:
    """Set a profiler on the execution `context` that records into the returned LayerTimes."""
    base: Any = trt.IProfiler
    times = LayerTimes()

    class Profiler(base):  # a pybind11 class: its __init__ must be called explicitly
        def __init__(self) -> None:
            base.__init__(self)

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            times.report(layer_name, ms)

    times.profiler = Profiler()
    context.profiler = times.profiler
    return times


def time_layers(runner: Any, runs: int, warmup: int, batch: int = 1) -> tuple[dict[str, list[float]], list[float]]:
    """(layer -> ms in each timed run, wall ms of each timed run) for a TrtRunner-like `runner` (`trt`,
    `context`, `image_shape`, `run(x)`); per-run plain enqueues, no CUDA graph (a replayed graph reports
    no layers)."""
    times = attach(runner.trt, runner.context)
    x = np.random.default_rng(0).standard_normal((batch, *runner.image_shape)).astype(np.float32)
    wall_ms = []
    for i in range(warmup + runs):
        times.start_run()
        start = time.perf_counter()
        runner.run(x)
        if i >= warmup:
            wall_ms.append((time.perf_counter() - start) * 1e3)
    return times.per_layer(skip=warmup), wall_ms
