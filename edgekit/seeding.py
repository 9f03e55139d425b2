"""Seeds without side effects: library code draws from a seeded copy of torch's global RNG and gives
the global state back, so one stage's seeding never changes what another stage draws."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """torch's global RNG seeded with `seed` inside the block (CPU and, when present, CUDA devices),
    restored afterwards."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
