"""Batch transforms in plain torch on (N, C, H, W) tensors: normalization and training augmentation."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def normalize(images: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 (N, C, H, W) pixels -> float32 normalized with per-channel mean/std of [0, 1] pixels. Float
    images (given from Python as the model's input) are not rescaled: (x - mean) / std only."""
    x = images.float().div_(255) if images.dtype == torch.uint8 else images.float()
    m = torch.tensor(mean, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - m) / s


def random_crop_flip(images: torch.Tensor, pad: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Random crop after zero padding by `pad` pixels, and random horizontal flip, per image."""
    return augment(images, pad, flip, generator)[0]


def augment(
    images: torch.Tensor, pad: int, flip: bool, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """random_crop_flip, also returning which images were flipped (None without flips): without crops an
    augmented image is one of two views of its source, which lets a KD teacher's logits be reused."""
    n, _, h, w = images.shape
    out = images
    if pad > 0:
        padded = F.pad(images, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        rows = dy.view(n, 1) + torch.arange(h).view(1, h)  # (n, h)
        cols = dx.view(n, 1) + torch.arange(w).view(1, w)  # (n, w)
        idx_n = torch.arange(n).view(n, 1, 1)
        # gather (n, C, h, w) from padded via advanced indexing on the spatial dims
        out = padded.permute(0, 2, 3, 1)[idx_n, rows.view(n, h, 1), cols.view(n, 1, w)].permute(0, 3, 1, 2)
    mask = None
    if flip:
        mask = torch.rand(n, generator=generator) < 0.5
        out = out.clone() if out is images else out
        out[mask] = out[mask].flip(-1)
    return out.contiguous(), mask


def view_keys(indices: torch.Tensor, flipped: torch.Tensor | None) -> torch.Tensor:
    """Which view of which image each row of an uncropped batch is: its index in the split, times two,
    plus one if `augment` flipped it."""
    return indices.long() * 2 + (flipped.long() if flipped is not None else 0)
