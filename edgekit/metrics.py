"""Measurements: accuracy, parameters and MACs, and latency statistics."""

from __future__ import annotations

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
    """Multiply-accumulates of one image (batch 1), counted by torch-pruning's op counter."""
    import torch_pruning as tp

    was_training = model.training
    model.eval()
    macs, _ = tp.utils.count_ops_and_params(model, torch.zeros(1, *input_size))
    model.train(was_training)
    return int(macs)


def latency_stats(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1e3
    return {f"p{q}": round(float(np.percentile(ms, q)), 4) for q in (50, 90, 99)}
