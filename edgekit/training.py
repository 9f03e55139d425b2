"""The training loop shared by baseline training and distillation: optimizer, cosine schedule with
warm-up, augmentation, progress. The loss is the caller's: `loss_fn(model, x, y) -> loss`."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Literal

import torch
from torch import nn

from edgekit.config import ranged
from edgekit.data.dataset import Dataset, Split
from edgekit.data.transforms import normalize, random_crop_flip
from edgekit.progress import Progress


@dataclass
class OptimConfig:
    """Optimizer and schedule. `lr` is the peak of a cosine schedule after `warmup_epochs` of linear warm-up."""

    epochs: int = ranged(2, 0, 10_000)
    batch_size: int = ranged(128, 1, 65_536)
    optimizer: Literal["sgd", "adamw"] = "adamw"
    lr: float = ranged(3e-3, 0.0, 10.0)
    weight_decay: float = ranged(0.01, 0.0, 1.0)
    warmup_epochs: float = ranged(0.2, 0.0, 100.0)
    augment_pad: int = ranged(2, 0, 64)
    augment_flip: bool = True
    seed: int = 0


LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def make_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    # No weight decay on norms and biases: decaying BN scales fights the pruner's magnitude criterion.
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def lr_at(step: int, total: int, warmup: int, peak: float) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * progress))


def fit(model: nn.Module, data: Dataset, cfg: OptimConfig, loss_fn: LossFn, label: str) -> dict[str, float]:
    """Train `model` in place; returns the mean loss of the last epoch and the images/s rate."""
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    n = len(data.train)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    warmup = int(cfg.warmup_epochs * steps_per_epoch)
    opt = make_optimizer(model, cfg)
    model.train()
    step, last_loss, rate = 0, float("nan"), 0.0
    for epoch in range(cfg.epochs):
        order = torch.randperm(n, generator=gen)
        bar = Progress(f"{label} epoch {epoch + 1}/{cfg.epochs}", n)
        running, seen = 0.0, 0
        for start in range(0, n, cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            images = random_crop_flip(data.train.images[idx], cfg.augment_pad, cfg.augment_flip, gen)
            x = normalize(images, data.mean, data.std)
            y = data.train.labels[idx]
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, warmup, cfg.lr)
            loss = loss_fn(model, x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            running += loss.item() * len(idx)
            seen += len(idx)
            bar.update(len(idx), loss=running / seen)
        last_loss = running / max(seen, 1)
        rate = bar.done / max(1e-9, time.perf_counter() - bar.start)
    model.eval()
    return {"final_loss": round(last_loss, 4), "images_per_s": round(rate, 1)}


@torch.no_grad()
def predict(model: nn.Module, split: Split, data: Dataset, batch_size: int = 500, label: str | None = None) -> torch.Tensor:
    """Logits of `model` on a split, in eval mode, with the data set's normalization."""
    model.eval()
    outs = []
    bar = Progress(label, len(split)) if label else None
    for start in range(0, len(split), batch_size):
        x = normalize(split.images[start : start + batch_size], data.mean, data.std)
        outs.append(model(x))
        if bar:
            bar.update(len(x))
    return torch.cat(outs)
