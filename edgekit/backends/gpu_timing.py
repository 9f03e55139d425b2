"""GPU models (TensorRT engines, PyTorch on CUDA) behind one base class: numpy in, numpy out for
accuracy, and a trtexec-style timing loop for latency.

Timing, as trtexec does it: warm up for a fixed time, then run until both a minimum count and a minimum
duration are reached. Each iteration is timed three ways: end to end on the host (pinned-memory copy in,
inference, copy out, synchronize), GPU compute only (CUDA events around the inference), and the two
copies (events). Optionally the inference is captured once in a CUDA graph and replayed, which removes
the per-launch CPU cost that dominates small models. torch provides the CUDA memory, streams, events and
graphs, so neither pycuda nor cuda-python is needed, on x86 or on Jetson."""

from __future__ import annotations

import logging
import time

import numpy as np

from edgekit.metrics import latency_stats

log = logging.getLogger(__name__)


def summarize(
    end_to_end_s: list[float],
    compute_ms: list[float],
    h2d_ms: list[float],
    d2h_ms: list[float],
    batch: int,
    cuda_graph: bool,
) -> dict:
    """The report's figures from per-iteration timings (seconds on the host, milliseconds from events)."""
    e2e = latency_stats(end_to_end_s)
    compute = latency_stats([t / 1e3 for t in compute_ms])
    return {
        "batch": batch,
        "iterations": len(end_to_end_s),
        "cuda_graph": cuda_graph,
        "end_to_end_ms": e2e,
        "gpu_compute_ms": compute,
        "h2d_ms": round(float(np.median(h2d_ms)), 4),
        "d2h_ms": round(float(np.median(d2h_ms)), 4),
        "throughput_ips": round(batch / (e2e["p50"] / 1e3), 1),
        "compute_throughput_ips": round(batch / (compute["p50"] / 1e3), 1),
    }


class GpuModel:
    """Subclasses set `max_batch` and implement `_bind(batch) -> (device_input, device_output)` and
    `_enqueue(stream)`: launch one inference on the bound buffers without synchronizing."""

    backend = "gpu"
    threads = 1
    max_batch = 1 << 30

    def __init__(self) -> None:
        import torch

        self.torch = torch
        self.stream = torch.cuda.Stream()
        self._bound: int | None = None
        self._graph = None

    def _bind(self, batch: int):
        raise NotImplementedError

    def _enqueue(self, stream) -> None:
        raise NotImplementedError

    def _prepare(self, batch: int) -> None:
        if self._bound == batch:
            return
        torch = self.torch
        self.d_in, self.d_out = self._bind(batch)
        self.h_in = torch.empty(self.d_in.shape, dtype=self.d_in.dtype, pin_memory=True)
        self.h_out = torch.empty(self.d_out.shape, dtype=self.d_out.dtype, pin_memory=True)
        self._bound, self._graph = batch, None

    def _infer_once(self) -> None:
        if self._graph is not None:
            self._graph.replay()
        else:
            self._enqueue(self.stream)

    def _pass(self, events=None) -> None:
        """Copy in, infer, copy out on the bound buffers, synchronized. With `events` (four CUDA events)
        they are recorded around each step: before the copy in, the inference, the copy out, and after."""
        s = self.stream
        steps = (
            lambda: self.d_in.copy_(self.h_in, non_blocking=True),
            self._infer_once,
            lambda: self.h_out.copy_(self.d_out, non_blocking=True),
        )
        with self.torch.cuda.stream(s):
            for i, step in enumerate(steps):
                if events:
                    events[i].record(s)
                step()
            if events:
                events[-1].record(s)
        s.synchronize()

    def run(self, x: np.ndarray) -> np.ndarray:
        """Logits for a float32 batch, split into chunks of at most `max_batch`."""
        outs = []
        for start in range(0, len(x), self.max_batch):
            chunk = x[start : start + self.max_batch]
            self._prepare(len(chunk))
            self.h_in.copy_(self.torch.from_numpy(np.ascontiguousarray(chunk)).to(self.h_in.dtype))
            self._pass()
            outs.append(self.h_out.float().numpy().copy())
        return np.concatenate(outs)

    def _capture(self) -> bool:
        """Record one inference as a CUDA graph; False (and no graph) when the capture fails, as trtexec
        falls back. One plain enqueue first, synchronized: TensorRT allocates on the first enqueue after
        a shape change, which a capture cannot contain. Thread-local capture mode, as trtexec uses, so
        other threads' work on the default stream does not break it."""
        torch = self.torch
        self._enqueue(self.stream)
        self.stream.synchronize()
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, stream=self.stream, capture_error_mode="thread_local"):
                self._enqueue(self.stream)
        except Exception as exc:
            log.info(
                f"{self.backend}: CUDA graph capture failed ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:120] if str(exc) else ''}); timing without it"
            )
            self._graph = None
            torch.cuda.synchronize()
            return False
        self._graph = graph
        return True

    def profile(
        self, batch: int, warmup_s: float = 0.2, min_s: float = 3.0, min_runs: int = 10, cuda_graph: bool = False
    ) -> dict:
        """trtexec-style figures at one batch size on random inputs (see the module doc)."""
        torch = self.torch
        if batch > self.max_batch:
            raise ValueError(f"batch {batch} is above this model's max batch {self.max_batch}")
        self._prepare(batch)
        self.h_in.copy_(torch.randn(self.h_in.shape).to(self.h_in.dtype))
        end = time.perf_counter() + warmup_s
        while time.perf_counter() < end:
            self._pass()
        if cuda_graph:
            cuda_graph = self._capture()
            self._pass()
        e2e: list[float] = []
        compute: list[float] = []
        h2d: list[float] = []
        d2h: list[float] = []
        events = [torch.cuda.Event(enable_timing=True) for _ in range(4)]
        start = time.perf_counter()
        while len(e2e) < min_runs or time.perf_counter() - start < min_s:
            t0 = time.perf_counter()
            self._pass(events)
            e2e.append(time.perf_counter() - t0)
            h2d.append(events[0].elapsed_time(events[1]))
            compute.append(events[1].elapsed_time(events[2]))
            d2h.append(events[2].elapsed_time(events[3]))
        self._graph = None
        return summarize(e2e, compute, h2d, d2h, batch, cuda_graph)
