"""The one data abstraction: a labelled image set held in memory as uint8 tensors (N, C, H, W)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Split:
    images: torch.Tensor  # uint8, (N, C, H, W)
    labels: torch.Tensor  # int64, (N,)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, indices: torch.Tensor) -> Split:
        return Split(self.images[indices], self.labels[indices])


@dataclass
class Dataset:
    name: str
    train: Split
    val: Split
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str  # where the files came from, for the report
    skipped: int = 0  # unreadable images left out (image folders)

    @property
    def input_size(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])  # type: ignore[return-value]

    @property
    def pixel_scale(self) -> str:
        """What the exported model's input is: uint8 pixels scaled by 1/255, or tensors fed as given."""
        return "1/255" if self.train.images.dtype == torch.uint8 else "1"

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "train_images": len(self.train),
            "val_images": len(self.val),
            "classes": len(self.classes),
            "input_size": list(self.input_size),
            "skipped_images": self.skipped,
        }


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean/std of uint8 images scaled to [0, 1] (computed on the training split only)."""
    x = images.float().div_(255)
    dims = [0, 2, 3]
    return tuple(x.mean(dims).tolist()), tuple(x.std(dims).tolist())
