from __future__ import annotations

from typing import Protocol

import numpy as np


class Runner(Protocol):
    backend: str  # "torch" | "onnxruntime"
    threads: int

    def run(self, x: np.ndarray) -> np.ndarray:
        """Logits for a float32 batch (N, C, H, W) already normalized."""
        ...
