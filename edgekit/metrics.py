"""Measurements: accuracy, parameters and MACs, and latency statistics."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


def topk_accuracy(logits, labels, ks=(1, 5)) -> dict[str, float]:
    logits = torch.as_tensor(np.asarray(logits)) if not isinstance(logits, torch.Tensor) else logits
    labels = torch.as_tensor(labels)
    out = {}
    for k in ks:
        k_eff = min(k, logits.shape[1])
        top = logits.topk(k_eff, dim=1).indices
        out[f"top{k}"] = (top == labels.view(-1, 1)).any(dim=1).float().mean().item()
    return out


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_size: tuple[int, ...]) -> int:
    """Multiply-accumulates of one input (batch 1) as papers and torchvision's model cards count them:
    convolutions (any `_ConvNd`, transposed too, and their subclasses) and linear layers only; batch norm,
    activations, pooling, additions and biases count nothing. FLOPs, where shown, are 2 x this.

    Counted by forward hooks on one eval-mode forward, so a layer called twice counts twice and a pruned
    model counts its real widths; works on a model built under `torch.device("meta")` (shapes only)."""
    total = [0]

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        total[0] += _layer_macs(module, inputs[0], output)

    modes = {m: m.training for m in model.modules()}
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, _COUNTED)]
    try:
        model.eval()
        with torch.no_grad():
            model(_example(model, input_size))
    finally:
        for h in handles:
            h.remove()
        for m, training in modes.items():  # per module: a frozen (eval) submodule of a training model stays so
            m.training = training
    return total[0]


_COUNTED = (nn.modules.conv._ConvNd, nn.Linear)


def _layer_macs(module: nn.Module, x: torch.Tensor, out: torch.Tensor) -> int:
    if isinstance(module, nn.Linear):  # every output element is one in_features-long dot product
        return out.numel() * module.in_features
    assert isinstance(module, nn.modules.conv._ConvNd)
    kernel = math.prod(module.kernel_size)
    if module.transposed:  # each input element is scattered to (out / groups) x kernel outputs
        return x.numel() * (module.out_channels // module.groups) * kernel
    return out.numel() * (module.in_channels // module.groups) * kernel


def _example(model: nn.Module, input_size: tuple[int, ...]) -> torch.Tensor:
    """A zero batch of one on the model's device and float dtype (meta for a meta-built model)."""
    p = next((t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()), None)
    if p is None:
        return torch.zeros(1, *input_size)
    return torch.zeros(1, *input_size, device=p.device, dtype=p.dtype)


def latency_stats(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1e3
    return {f"p{q}": round(float(np.percentile(ms, q)), 4) for q in (50, 90, 99)}
