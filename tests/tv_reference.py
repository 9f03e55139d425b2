"""Deterministic weights and a fixed input for checking that edgekit's zoo computes what torchvision's
models compute, without torchvision installed: the weights are a function of each parameter's name and
shape only, so the reference outputs (made once with torchvision by tests/tools/make_tv_reference.py)
can be reproduced here from the edgekit model's own state_dict keys."""

from __future__ import annotations

import hashlib
import zlib
from collections import OrderedDict

import torch

INPUT_SIZE = (3, 64, 64)


def keys_digest(state: dict[str, torch.Tensor]) -> str:
    text = "\n".join(f"{k}:{tuple(v.shape)}" for k, v in state.items())
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fill(key: str, shape: torch.Size, dtype: torch.dtype) -> torch.Tensor:
    """A tensor that depends only on (key, shape): scaled so activations stay O(1) in deep nets."""
    gen = torch.Generator().manual_seed(zlib.crc32(f"{key}:{tuple(shape)}".encode()))
    if not dtype.is_floating_point:
        return torch.zeros(shape, dtype=dtype)
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "running_var":
        return 0.5 + torch.rand(shape, generator=gen, dtype=dtype)
    if leaf == "running_mean":
        return 0.1 * torch.randn(shape, generator=gen, dtype=dtype)
    if len(shape) >= 2:  # conv / linear weight
        fan_in = shape[1:].numel()
        return torch.randn(shape, generator=gen, dtype=dtype) * (1.0 / fan_in) ** 0.5
    if leaf == "weight":  # norm scale
        return 1.0 + 0.1 * torch.randn(shape, generator=gen, dtype=dtype)
    return 0.05 * torch.randn(shape, generator=gen, dtype=dtype)


def deterministic_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = OrderedDict((k, fill(k, v.shape, v.dtype)) for k, v in state.items())
    if hasattr(state, "_metadata"):  # module versions (torchvision's MnasNet checks its own)
        out._metadata = state._metadata  # type: ignore[attr-defined]
    return out


def reference_input(batch: int = 2) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1234)
    return torch.randn(batch, *INPUT_SIZE, generator=gen)
