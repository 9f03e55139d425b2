"""Accuracy, latency and throughput of any runner, on the same inputs for every runner."""

from __future__ import annotations

import time

import numpy as np

from edgekit.backends.base import Runner
from edgekit.metrics import latency_stats, topk_accuracy
from edgekit.progress import Progress

EVAL_BATCH_VALUES = 250 * 3 * 64 * 64  # floats per accuracy batch: 250 images at 64 px RGB, 20 at 224


def evaluate(
    runner: Runner, images: np.ndarray, labels: np.ndarray, batch_size: int = 250, label: str | None = None
) -> dict[str, float]:
    """top-1/top-5 of the runner on normalized float32 images (see `logits`)."""
    return topk_accuracy(logits(runner, images, batch_size, label), labels)


def logits(runner: Runner, images: np.ndarray, batch_size: int = 250, label: str | None = None) -> np.ndarray:
    """The runner's outputs on normalized float32 images, in batches of at most `batch_size` images and
    EVAL_BATCH_VALUES floats: batches of 250 at 224 px made torch allocate and free gigabytes per batch (a
    third of the validate stage's time went to the kernel's page faults)."""
    per_image = int(np.prod(images.shape[1:])) if images.ndim > 1 else 1
    batch_size = max(1, min(batch_size, EVAL_BATCH_VALUES // per_image))
    outs = []
    bar = Progress(label, len(images)) if label else None
    for start in range(0, len(images), batch_size):
        batch = np.ascontiguousarray(images[start : start + batch_size])
        outs.append(runner.run(batch))
        if bar:
            bar.update(len(batch))
    return np.concatenate(outs)


def _timed_runs(runner: Runner, x: np.ndarray, warmup_s: float, min_runs: int, min_s: float) -> list[float]:
    end_warmup = time.perf_counter() + warmup_s
    while time.perf_counter() < end_warmup:
        runner.run(x)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_s:
        t0 = time.perf_counter()
        runner.run(x)
        times.append(time.perf_counter() - t0)
    return times


def measure_latency(
    runner: Runner, inputs: np.ndarray, warmup_s: float = 0.5, min_runs: int = 100, min_s: float = 2.0
) -> dict:
    """Batch-1 latency: warm-up by time, then at least `min_runs` runs and `min_s` seconds."""
    times = _timed_runs(runner, np.ascontiguousarray(inputs[:1]), warmup_s, min_runs, min_s)
    return {**latency_stats(times), "runs": len(times)}


def measure_throughput(
    runner: Runner, inputs: np.ndarray, batch: int = 32, warmup_s: float = 0.5, min_runs: int = 20, min_s: float = 2.0
) -> float:
    """Images per second at a fixed batch size (median batch time)."""
    x = np.ascontiguousarray(inputs[:batch])
    return throughput_of(_timed_runs(runner, x, warmup_s, min_runs, min_s), batch)


def measure_interleaved(
    runners: list[Runner],
    inputs: np.ndarray,
    batch: int,
    rounds: int = 5,
    warmup_s: float = 0.5,
    min_runs: int = 100,
    min_s: float = 2.0,
    label: str | None = None,
) -> list[list[float]]:
    """Per-run seconds for each runner at `batch`, timed in `rounds` alternating slices.

    Timing one model after another lets drift (another process, turbo, a spinning thread pool left
    by the previous runner) land on one model only; alternating spreads it over all of them. Each
    slice starts with a short warm-up so the previous runner's threads have gone quiet."""
    x = np.ascontiguousarray(inputs[:batch])
    slice_warmup = min(0.1, warmup_s)
    for runner in runners:  # first-touch costs (allocations, kernel selection) before any slice
        _timed_runs(runner, x, warmup_s, 1, 0.0)
    times: list[list[float]] = [[] for _ in runners]
    bar = Progress(label, rounds * len(runners)) if label else None
    for _ in range(rounds):
        for i, runner in enumerate(runners):
            times[i] += _timed_runs(runner, x, slice_warmup, -(-min_runs // rounds), min_s / rounds)
            if bar:
                bar.update(1)
    return times


def throughput_of(times: list[float], batch: int) -> float:
    return round(batch / float(np.median(times)), 1)
