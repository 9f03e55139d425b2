"""Accuracy and speed of every row's ONNX file, measured the same way: ONNX Runtime on the CPU, one
intra-op thread, the whole validation split, and all rows of a model timed in the same interleaved
rounds (edgekit.backends.measure_interleaved) so machine drift does not favour one row."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from edgekit.backends import evaluate, measure_interleaved, throughput_of
from edgekit.backends.base import Runner
from edgekit.backends.ort import OrtRunner
from edgekit.metrics import latency_stats


@dataclass
class Timing:
    threads: int = 1
    batch: int = 32
    rounds: int = 10
    warmup_s: float = 0.5
    min_seconds: float = 5.0  # per row and per batch size, spread over the rounds
    min_runs: int = 200


QUICK_TIMING = Timing(rounds=1, warmup_s=0.0, min_seconds=0.0, min_runs=2)


def measure(files: dict[str, Path], images: np.ndarray, labels: np.ndarray, t: Timing) -> dict[str, dict]:
    """{name: {top1, latency_ms_p50, latency_ms (p50, p90, p99), throughput_ips}} for each ONNX file."""
    names = list(files)
    runners: list[Runner] = [OrtRunner(files[n], t.threads) for n in names]
    accs = [evaluate(r, images, labels, label=f"evaluate {n}")["top1"] for n, r in zip(names, runners, strict=True)]
    timed = partial(measure_interleaved, runners, images, rounds=t.rounds, warmup_s=t.warmup_s, min_s=t.min_seconds)
    lat = timed(1, min_runs=t.min_runs, label="latency @1")
    big = timed(t.batch, min_runs=max(1, t.min_runs // 5), label=f"throughput @{t.batch}")
    out = {}
    for n, acc, one, batch in zip(names, accs, lat, big, strict=True):
        stats = latency_stats(one)
        out[n] = {
            "top1": round(float(acc), 4),
            "latency_ms_p50": stats["p50"],
            "latency_ms": stats,
            "throughput_ips": throughput_of(batch, t.batch),
        }
    return out
