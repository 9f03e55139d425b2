"""Normalized numpy arrays that runners, calibration and the accuracy checks are fed: the validation
images, and a seeded order of the training split that keeps calibration and held-out images disjoint."""

from __future__ import annotations

import numpy as np
import torch

from edgekit.data.dataset import Dataset, Split
from edgekit.data.transforms import normalize
from edgekit.errors import EdgekitError


def as_arrays(data: Dataset, split: Split, index: torch.Tensor | slice) -> tuple[np.ndarray, np.ndarray]:
    """`split[index]` normalized as the models expect (float32), and its labels."""
    return normalize(split.images[index], data.mean, data.std).numpy(), split.labels[index].numpy()


def val_arrays(data: Dataset, limit: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The first `limit` validation images (0 = all), normalized, and their labels."""
    return as_arrays(data, data.val, slice(0, limit or len(data.val)))


class TrainOrder:
    """A seeded permutation of the training split: the first `calib` images calibrate int8 ranges, the
    next `held` measure the int8 drop (disjoint from calibration, never the validation split that the
    report measures), and the rest (with the calibration images) stay for quantization-aware training."""

    def __init__(self, data: Dataset, seed: int, calib: int, held: int = 0):
        self.data, self.calib, self.held = data, calib, held
        self.order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(seed))

    def calibration(self) -> np.ndarray:
        return as_arrays(self.data, self.data.train, self.order[: self.calib])[0]

    def held_out(self) -> tuple[np.ndarray, np.ndarray]:
        idx = self.order[self.calib : self.calib + self.held]
        if len(idx) == 0:
            raise EdgekitError(
                f"no training images left for the int8 accuracy check: the split has {len(self.data.train)} and "
                f"calibration takes quantize.calib_images={self.calib}; lower calib_images or set "
                "quantize.check_drop=false"
            )
        return as_arrays(self.data, self.data.train, idx)

    def rest(self) -> Split:
        """The training split without the held-out images (sorted, in the split's own order)."""
        keep = torch.cat([self.order[: self.calib], self.order[self.calib + self.held :]])
        return self.data.train.subset(keep.sort().values)
