"""Data given from Python: a torch Dataset or DataLoader of (image C x H x W, int label), or a pair of
arrays (images N x C x H x W, labels N). Held in memory like every edgekit data set.

uint8 images are pixels: normalized with the training split's per-channel mean/std, as image folders
are. Float images are the model's input contract: fed as they are (mean 0, std 1: no renormalising),
and the exported ONNX takes the same tensor."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from edgekit.data.dataset import Dataset, Split, channel_stats
from edgekit.errors import EdgekitError


def _tensor(x: Any, what: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    if isinstance(x, (int, np.integer)):
        return torch.tensor(int(x))
    raise EdgekitError(f"{what} is a {type(x).__name__}: give torch tensors or numpy arrays")


def _pairs(source: Any, split: str) -> Iterable[tuple[Any, Any]]:
    """(images, labels) batches from a DataLoader, single items from a Dataset, or one pair of arrays."""
    from torch.utils.data import DataLoader

    if isinstance(source, DataLoader):
        return source
    if isinstance(source, (tuple, list)) and len(source) == 2 and not isinstance(source[0], (tuple, list)):
        return [(source[0], source[1])]
    if hasattr(source, "__getitem__") and hasattr(source, "__len__"):
        return (source[i] for i in range(len(source)))  # one (image, label) item each
    raise EdgekitError(
        f"the {split} data is a {type(source).__name__}: give a torch Dataset or DataLoader of (image, label), "
        "a pair (images, labels) of arrays, or a folder path"
    )


def split_of(source: Any, split: str) -> Split:
    images, labels = [], []
    for k, item in enumerate(_pairs(source, split)):
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise EdgekitError(f"{split} item {k} is not an (image, label) pair: return (tensor C x H x W, int label)")
        x, y = _tensor(item[0], f"{split} image {k}"), _tensor(item[1], f"{split} label {k}")
        if x.ndim == 3 and y.ndim == 0:  # one item of a Dataset
            x, y = x.unsqueeze(0), y.reshape(1)
        if x.ndim != 4:
            raise EdgekitError(
                f"{split} images have shape {tuple(x.shape)}: give images as C x H x W (batches N x C x H x W)"
            )
        images.append(x)
        labels.append(y.reshape(-1))
    if not images:
        raise EdgekitError(f"the {split} data is empty: give at least one labelled image")
    shapes = {tuple(x.shape[1:]) for x in images}
    if len(shapes) > 1:
        raise EdgekitError(
            f"the {split} images have mixed shapes {sorted(shapes)[:3]}: resize them to one C x H x W size before "
            "giving them"
        )
    all_labels = torch.cat(labels)
    if all_labels.is_floating_point() or all_labels.dtype == torch.bool:
        raise EdgekitError(f"the {split} labels are {all_labels.dtype}: give integer class indices 0..classes-1")
    x = torch.cat(images)
    x = x if x.dtype == torch.uint8 else x.float()
    if len(x) != len(all_labels):
        raise EdgekitError(
            f"the {split} data has {len(x)} images but {len(all_labels)} labels: give one label per image"
        )
    return Split(x.contiguous(), all_labels.long())


def dataset_from(train: Any, val: Any = None, *, val_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """A Dataset from Python objects; without `val`, a seeded `val_fraction` of `train` is held out."""
    tr = split_of(train, "training")
    if val is None:
        order = torch.randperm(len(tr), generator=torch.Generator().manual_seed(seed))
        n_val = max(1, int(len(tr) * val_fraction))
        va, tr = tr.subset(order[:n_val].sort().values), tr.subset(order[n_val:].sort().values)
    else:
        va = split_of(val, "validation")
    if tr.images.shape[1:] != va.images.shape[1:]:
        raise EdgekitError(
            f"training images are {tuple(tr.images.shape[1:])} but validation images are {tuple(va.images.shape[1:])}: "
            "give both splits at one size"
        )
    if (tr.images.dtype == torch.uint8) != (va.images.dtype == torch.uint8):
        raise EdgekitError("one split holds uint8 pixels and the other float tensors: give both in the same form")
    classes = [str(c) for c in getattr(train, "classes", None) or range(int(tr.labels.max()) + 1)]
    if len(classes) < 2:
        raise EdgekitError("the training data has one class: a classifier needs at least two")
    for name, split in (("training", tr), ("validation", va)):
        bad = split.labels[(split.labels < 0) | (split.labels >= len(classes))]
        if len(bad):
            raise EdgekitError(
                f"the {name} labels include {int(bad[0])}, outside the {len(classes)} classes 0..{len(classes) - 1}: "
                "give class indices (and a `classes` list on the training data when some classes have no images)"
            )
    channels = tr.images.shape[1]
    if tr.images.dtype == torch.uint8:
        mean, std = channel_stats(tr.images)
    else:
        mean, std = (0.0,) * channels, (1.0,) * channels
    return Dataset("python", tr, va, classes, mean, std, source="python objects")
