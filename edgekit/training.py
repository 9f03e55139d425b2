"""The training loop shared by baseline training and distillation: optimizer, cosine schedule with
warm-up, augmentation, progress, device and mixed precision (edgekit.accelerator). The loss is the
caller's: `loss_fn(model, x, y) -> loss`, called under autocast with `x`, `y` on the training device."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Literal

import torch
from torch import nn

from edgekit.accelerator import amp_dtype, autocast, grad_scaler, precision_name, resolve_device
from edgekit.config import ranged
from edgekit.data.dataset import Dataset, Split
from edgekit.data.transforms import normalize, random_crop_flip
from edgekit.progress import Progress


@dataclass
class OptimConfig:
    """Optimizer and schedule. `lr` is the peak of a cosine schedule after `warmup_epochs` of linear warm-up.
    `device`: auto (CUDA when PyTorch sees a GPU, else CPU), cpu or cuda; the model is back on the CPU
    afterwards. `amp`: mixed precision on CUDA: auto (bf16 where supported, else fp16 with loss
    scaling), off, bf16 or fp16; on CPU training is always fp32."""

    epochs: int = ranged(2, 0, 10_000)
    batch_size: int = ranged(128, 1, 65_536)
    optimizer: Literal["sgd", "adamw"] = "adamw"
    lr: float = ranged(3e-3, 0.0, 10.0)
    weight_decay: float = ranged(0.01, 0.0, 1.0)
    warmup_epochs: float = ranged(0.2, 0.0, 100.0)
    augment_pad: int = ranged(2, 0, 64)
    augment_flip: bool = True
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"


LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def make_optimizer(model: nn.Module, cfg: OptimConfig, extra: nn.Module | None = None) -> torch.optim.Optimizer:
    """AdamW or SGD over `model`'s parameters and those of `extra` (a module trained alongside, e.g. a
    distillation adapter)."""
    # No weight decay on norms and biases: decaying BN scales fights the pruner's magnitude criterion.
    params = list(model.parameters()) + (list(extra.parameters()) if extra is not None else [])
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def lr_at(step: int, total: int, warmup: int, peak: float) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * progress))


def fit(model: nn.Module, data: Dataset, cfg: OptimConfig, loss_fn: LossFn, label: str, extra: nn.Module | None = None) -> dict:
    """Train `model` in place (and `extra`, whose parameters join the optimizer); returns the mean loss
    of the last epoch, the images/s rate, the device and the precision. Both modules end on the device
    they started on (the CPU for every stage), whatever device trained them."""
    device = resolve_device(cfg.device)
    dtype = amp_dtype(cfg.amp, device.type)
    if device.type == "cpu" and cfg.amp in ("bf16", "fp16"):
        print(f"{label}: amp {cfg.amp} applies on CUDA only; training in fp32 on the CPU", flush=True)
    home = next(model.parameters()).device
    model.to(device)
    if extra is not None:
        extra.to(device)
    try:
        stats = _loop(model, data, cfg, loss_fn, label, extra, device, dtype)
    finally:
        model.to(home)
        if extra is not None:
            extra.to(home)
    return {**stats, "device": device.type, "precision": precision_name(dtype)}


def _loop(model, data, cfg, loss_fn, label, extra, device, dtype) -> dict[str, float]:
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    n = len(data.train)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    warmup = int(cfg.warmup_epochs * steps_per_epoch)
    opt = make_optimizer(model, cfg, extra)
    scaler = grad_scaler(device, dtype)
    model.train()
    if extra is not None:
        extra.train()
    step, last_loss, rate = 0, float("nan"), 0.0
    for epoch in range(cfg.epochs):
        order = torch.randperm(n, generator=gen)
        bar = Progress(f"{label} epoch {epoch + 1}/{cfg.epochs}", n)
        running, seen = 0.0, 0
        for start in range(0, n, cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            # Augmentation stays on the CPU with its seeded generator, so CPU and GPU runs see the same batches.
            images = random_crop_flip(data.train.images[idx], cfg.augment_pad, cfg.augment_flip, gen)
            x = normalize(images, data.mean, data.std).to(device, non_blocking=True)
            y = data.train.labels[idx].to(device, non_blocking=True)
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, warmup, cfg.lr)
            with autocast(device, dtype):
                loss = loss_fn(model, x, y)
            opt.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                opt.step()
            else:  # fp16: scale the loss so small gradients do not flush to zero; steps with inf/nan are skipped
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            step += 1
            running += loss.item() * len(idx)
            seen += len(idx)
            bar.update(len(idx), loss=running / seen)
        last_loss = running / max(seen, 1)
        rate = bar.done / max(1e-9, time.perf_counter() - bar.start)
    model.eval()
    if extra is not None:
        extra.eval()
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
