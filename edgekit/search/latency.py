"""Direct latency measurement of a candidate: exported as edgekit exports (TorchScript exporter at the
run's opset, onnxsim), run in ONNX Runtime on this CPU at batch 1 with one thread, the p50 of a short
timed window on a fixed seeded input. A per-layer lookup table is a follow-up (see the package doc).

With a reference (the unpruned model, timed once over a longer window), each candidate is timed in
alternating slices with the reference and reported as p50(candidate) / p50(reference in the same
window) x the reference's p50: load from other processes then lands on both and cancels. On this
shared 2-core machine the unpruned MobileNetV3 (28 px) measured 0.149, 0.208 and 0.257 ms p50 in three
plain 0.3 s windows, enough to call it feasible under a 0.17 ms target in one of them."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from torch import nn

from edgekit.backends.measure import measure_interleaved, measure_latency
from edgekit.backends.ort import OrtRunner
from edgekit.export.onnx_file import DEFAULT_OPSET, save_onnx, to_onnx

ROUNDS = 3  # alternating slices per interleaved measurement


class LatencyMeter:
    def __init__(
        self,
        input_size: tuple[int, ...],
        window_s: float = 1.0,
        warmup_s: float = 0.1,
        min_runs: int = 20,
        opset: int = DEFAULT_OPSET,
        seed: int = 0,
    ):
        self.input_size, self.window_s, self.warmup_s, self.min_runs = input_size, window_s, warmup_s, min_runs
        self.opset = opset
        self.x = np.random.default_rng(seed).standard_normal((1, *input_size)).astype(np.float32)
        self.reference: OrtRunner | None = None
        self.reference_ms: float | None = None

    def _runner(self, model: nn.Module) -> OrtRunner:
        proto = to_onnx(model, self.input_size, self.opset, True)
        with tempfile.TemporaryDirectory(prefix="edgekit-search-") as tmp:
            path = Path(tmp) / "candidate.onnx"
            save_onnx(proto, path)
            return OrtRunner(path, threads=1)  # the session holds the graph: the file may go

    def set_reference(self, model: nn.Module, window_s: float, ms: float | None = None) -> float:
        """Time candidates against `model` from now on; its p50 is measured over `window_s` (or given as
        `ms`, e.g. from a resumed search's state, so that all its records share one scale)."""
        self.reference = self._runner(model)
        if ms is None:
            stats = measure_latency(self.reference, self.x, self.warmup_s, self.min_runs, window_s)
            ms = float(stats["p50"])
        self.reference_ms = ms
        return ms

    def __call__(self, model: nn.Module, window_s: float | None = None) -> float:
        """p50 milliseconds of `model` (`window_s` overrides the timed window, e.g. for finalists)."""
        runner = self._runner(model)
        window = self.window_s if window_s is None else window_s
        if self.reference is None or self.reference_ms is None:
            return float(measure_latency(runner, self.x, self.warmup_s, self.min_runs, window)["p50"])
        own, ref = measure_interleaved(
            [runner, self.reference], self.x, 1, ROUNDS, self.warmup_s, self.min_runs, window
        )
        return float(np.median(own) / np.median(ref) * self.reference_ms)
