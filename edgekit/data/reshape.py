"""Data sets at another size or channel count, when a recipe asks for it explicitly: a built-in set at a
pretrained model's resolution, grayscale repeated into RGB for weights trained on colour images."""

from __future__ import annotations

import dataclasses
import logging

import torch
import torch.nn.functional as F

from edgekit.data.dataset import Dataset, Split
from edgekit.errors import EdgekitError

log = logging.getLogger(__name__)
CHUNK = 2048  # images resized at a time: bounded float memory at 224 px


def _resize(split: Split, size: int) -> Split:
    out = []
    for start in range(0, len(split), CHUNK):
        x = split.images[start : start + CHUNK].float()
        y = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=size < x.shape[-1])
        out.append(y.round_().clamp_(0, 255).to(split.images.dtype) if split.images.dtype == torch.uint8 else y)
    return Split(torch.cat(out), split.labels)


def resized(data: Dataset, size: int) -> Dataset:
    """`data` with every image resized to `size` x `size` (bilinear; upscaling said in the log)."""
    side = data.input_size[-1]
    log.info("data: %s resized from %d to %d px (data.image_size)%s", data.name, side, size,
             ": upscaled, no new detail" if size > side else "")  # fmt: skip
    return dataclasses.replace(data, train=_resize(data.train, size), val=_resize(data.val, size),
                               source=f"{data.source}, resized to {size}px")  # fmt: skip


def with_channels(data: Dataset, channels: int) -> Dataset:
    """Grayscale repeated into `channels` channels (with the mean and std repeated)."""
    if data.input_size[0] != 1:
        raise EdgekitError(
            f"data.channels={channels} asks to convert {data.input_size[0]}-channel images: only grayscale (1 channel) "
            "images can be repeated; remove data.channels"
        )

    def rep(split: Split) -> Split:
        return Split(split.images.expand(-1, channels, -1, -1).contiguous(), split.labels)

    source = f"{data.source}, grayscale as {channels} channels"
    mean, std = data.mean * channels, data.std * channels
    return dataclasses.replace(data, train=rep(data.train), val=rep(data.val), mean=mean, std=std, source=source)
