"""PyTorch on the CPU. torch's intra-op thread count is process-wide, so a runner does not set it per
call (that would also change it for whatever trains next): the caller sets it once for a block of work
with `torch_threads`, which gives the previous value back afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """torch.set_num_threads(threads) inside the block, restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class TorchRunner:
    backend = "torch"

    def __init__(self, module: nn.Module, threads: int):
        self.module = module.eval()
        self.threads = threads  # what the caller's torch_threads block sets; reported with the figures

    @torch.no_grad()
    def run(self, x: np.ndarray) -> np.ndarray:
        return self.module(torch.from_numpy(x)).numpy()
