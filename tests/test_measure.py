"""Timing helpers: every runner gets the same inputs, enough runs, and alternating slices."""

from itertools import pairwise

import numpy as np

from edgekit.backends import measure_interleaved, measure_latency, throughput_of
from edgekit.metrics import latency_stats


class Recorder:
    backend = "fake"

    def __init__(self, name, log):
        self.name, self.log = name, log

    def run(self, x):
        self.log.append((self.name, x.shape[0]))
        return np.zeros((x.shape[0], 10), np.float32)


def test_interleaved_alternates_runners_and_meets_min_runs():
    log = []
    runners = [Recorder("a", log), Recorder("b", log)]
    x = np.zeros((64, 1, 4, 4), np.float32)
    times = measure_interleaved(runners, x, batch=32, rounds=4, warmup_s=0.0, min_runs=10, min_s=0.0)
    assert [len(t) for t in times] == [12, 12]  # ceil(10 / 4) = 3 per slice, 4 slices
    assert all(b == 32 for _, b in log)
    order = [name for name, _ in log]
    # a and b take turns: neither is timed in one block
    switches = sum(1 for p, q in pairwise(order) if p != q)
    assert switches >= 2 * 4 - 1


def test_latency_and_throughput_statistics():
    stats = latency_stats([0.001, 0.002, 0.003, 0.004])
    assert stats["p50"] == 2.5 and stats["p90"] <= stats["p99"] <= 4.0
    assert throughput_of([0.5, 1.0, 2.0], batch=32) == 32.0
    lat = measure_latency(Recorder("a", []), np.zeros((3, 1, 2, 2), np.float32), warmup_s=0.0, min_runs=7, min_s=0.0)
    assert lat["runs"] == 7 and lat["p50"] >= 0
