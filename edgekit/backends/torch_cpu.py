from __future__ import annotations

import numpy as np
import torch
from torch import nn


class TorchRunner:
    backend = "torch"

    def __init__(self, module: nn.Module, threads: int):
        self.module = module.eval()
        self.threads = threads

    @torch.no_grad()
    def run(self, x: np.ndarray) -> np.ndarray:
        torch.set_num_threads(self.threads)
        return self.module(torch.from_numpy(x)).numpy()
