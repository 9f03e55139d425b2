"""A KD teacher's logits on the training images, computed once per view and reused.

The teacher is frozen and in eval mode, so its output on an image depends on the image alone. Without
random crops a training image reaches the model in one of two views (flipped or not), so after an
epoch or two most of the teacher's forward passes repeat ones already made: the demo's MobileNetV3
spent 84 s of its distill and rewrite stages on them (3,567 img/s over 5 epochs of 60,000 images, AMD
EPYC, 2 threads). Keyed by `index * 2 + flipped`, the cache computes each view once; a batch's hits
come from memory and only its misses go through the teacher.

The distill and rewrite stages both distill from the baseline, so `shared` keeps one cache per
teacher (weakly) and split, checked against a checksum of the teacher's weights before reuse."""

from __future__ import annotations

import logging
import weakref

import torch
from torch import nn

log = logging.getLogger(__name__)

MAX_BYTES = 512 * 2**20  # beyond this (ImageNet: 1.28M images x 2 views x 1000 classes = 10 GB) no cache


def weights_checksum(module: nn.Module) -> tuple[int, float, float]:
    """Counts, sum and position-weighted sum of every parameter and buffer: changes when any weight does."""
    tensors = [t.detach().flatten().double().cpu() for t in list(module.parameters()) + list(module.buffers())]
    if not tensors:
        return (0, 0.0, 0.0)
    flat = torch.cat(tensors)
    weights = torch.linspace(1.0, 2.0, len(flat), dtype=torch.float64)
    return (len(flat), float(flat.sum()), float((flat * weights).sum()))


class TeacherLogits:
    """Logits of a teacher on the views of one training split (`images`), filled as they are asked for."""

    def __init__(self, teacher: nn.Module, images: torch.Tensor, max_bytes: int = MAX_BYTES):
        self.views = 2 * len(images)
        self._images: weakref.ref[torch.Tensor] | None = weakref.ref(images)
        self._checksum = weights_checksum(teacher)
        self.max_bytes = max_bytes
        self.values: torch.Tensor | None = None
        self.filled = torch.zeros(self.views, dtype=torch.bool)
        self.disabled = False

    def valid_for(self, teacher: nn.Module, images: torch.Tensor) -> bool:
        return self._images is not None and self._images() is images and weights_checksum(teacher) == self._checksum

    def __getstate__(self) -> dict:
        """An empty copy for another process (a distributed fit sends its loss to the other ranks): each rank
        fills its own with the views of its shard, and a weak reference cannot be pickled."""
        state = dict(self.__dict__)
        state.update(_images=None, values=None, filled=torch.zeros(self.views, dtype=torch.bool))
        return state

    def __call__(self, teacher: nn.Module, x: torch.Tensor, keys: torch.Tensor) -> tuple[torch.Tensor, int]:
        """The teacher's logits for the batch `x` whose views are `keys`, and how many it computed."""
        keys = keys.cpu()
        if self.disabled:
            return teacher(x), len(x)
        miss = ~self.filled[keys]
        computed = int(miss.sum())
        if computed == len(keys):  # the first batch, and any whose views are all new
            out = teacher(x)
            self._store(keys, out)
            return out, computed
        assert self.values is not None  # a view was filled, so the store exists
        out = self.values[keys.to(self.values.device)]
        if computed:
            fresh = teacher(x[miss.to(x.device)])
            out[miss.to(out.device)] = fresh.to(out.dtype)
            self._store(keys[miss], fresh)
        return out, computed

    def _store(self, keys: torch.Tensor, logits: torch.Tensor) -> None:
        if self.values is None:  # made on first use, when the logits' width, dtype and device are known
            need = self.views * logits.shape[1] * logits.element_size()
            if need > self.max_bytes:
                self.disabled = True
                log.debug(f"teacher logits not cached: {need / 2**20:.0f} MiB over the {self.max_bytes / 2**20:.0f}")
                return
            self.values = torch.empty((self.views, logits.shape[1]), dtype=logits.dtype, device=logits.device)
        self.values[keys.to(self.values.device)] = logits.detach().to(self.values.dtype)
        self.filled[keys] = True


_SHARED: weakref.WeakKeyDictionary[nn.Module, TeacherLogits] = weakref.WeakKeyDictionary()


def shared(teacher: nn.Module, images: torch.Tensor) -> TeacherLogits:
    """The cache of `teacher` on the split `images`: the one an earlier fit filled while the teacher's
    weights and the split are the same, else a new one."""
    cache = _SHARED.get(teacher)
    if cache is None or not cache.valid_for(teacher, images):
        cache = TeacherLogits(teacher, images)
        _SHARED[teacher] = cache
    return cache
