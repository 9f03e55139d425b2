"""The training loop shared by baseline training and distillation: optimizer, cosine schedule with
warm-up, augmentation, progress, device and mixed precision (edgekit.accelerator). The loss is the
caller's: `loss_fn(model, x, y) -> loss`, called under autocast with `x`, `y` on the training device."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

import edgekit.distributed as dist
import edgekit.sharding as sharding
from edgekit.accelerator import amp_dtype, autocast, grad_scaler, precision_name, resolve_device
from edgekit.config import ranged
from edgekit.data.dataset import Dataset, Split
from edgekit.data.transforms import augment, normalize, view_keys
from edgekit.progress import TRAIN, Progress
from edgekit.seeding import seeded
from edgekit.training_layout import example_batch, to_home_layout, to_training_layout
from edgekit.training_state import load_state, save_state, to_cpu

log = logging.getLogger(__name__)


@dataclass
class OptimConfig:
    """Optimizer and schedule. `lr` is the peak of a cosine schedule after `warmup_epochs` of linear warm-up.
    `device`: auto (CUDA when PyTorch sees a GPU, else CPU), cpu or cuda; the model is back on the CPU
    afterwards. `amp`: mixed precision on CUDA: auto (bf16 where supported, else fp16 with loss
    scaling), off, bf16 or fp16; on CPU training is always fp32. `bn_recalibrate`: after training, every
    BatchNorm's running mean and variance are recomputed exactly on this many seeded training images
    (no augmentation) with the final weights; 0 keeps the running averages. With the BN momentum of
    MobileNetV3 and EfficientNet (0.01) the running averages of a short run still hold their initial
    values: a MobileNetV3 trained 283 steps evaluated at 10% top-1 with them and at 83% recalibrated.
    `augment_pad`: random crops (pad by this many pixels, crop back); 0 by default, because in edgekit's
    short budgets the crop costs more than it regularises (bench/ablation.py, MobileNetV3 on
    Fashion-MNIST: baseline 90.8% without it vs 89.6% with 2 pixels on 60,000 images; recovery by KD
    83.9% vs 80.7% on 12,000 images). `augment_flip`: random horizontal flips."""

    epochs: int = ranged(2, 0, 10_000)
    batch_size: int = ranged(128, 1, 65_536)
    optimizer: Literal["sgd", "adamw"] = "adamw"
    lr: float = ranged(3e-3, 0.0, 10.0)
    weight_decay: float = ranged(0.01, 0.0, 1.0)
    warmup_epochs: float = ranged(0.2, 0.0, 100.0)
    augment_pad: int = ranged(0, 0, 64)
    augment_flip: bool = True
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"
    bn_recalibrate: int = ranged(2048, 0, 10_000_000)


LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def make_optimizer(
    model: nn.Module, cfg: OptimConfig, extra: nn.Module | None = None, head: nn.Module | None = None
) -> torch.optim.Optimizer:
    """AdamW or SGD over `model`'s parameters and those of `extra` (a module trained alongside, e.g. a
    distillation adapter). With `head` (the classifier, in transfer learning), the other parameters (the
    backbone) get `backbone_lr_scale` times the learning rate, as each group's `lr_scale`."""
    params = list(model.parameters()) + (list(extra.parameters()) if extra is not None else [])
    head_ids = {id(p) for p in head.parameters()} if head is not None else set()
    backbone_scale = float(getattr(cfg, "backbone_lr_scale", 1.0)) if head is not None else 1.0
    groups = []
    for is_head in (False, True):
        mine = [p for p in params if (id(p) in head_ids) == is_head]
        scale = 1.0 if is_head else backbone_scale
        # No weight decay on norms and biases: decaying BN scales fights the pruner's magnitude criterion.
        groups += [
            {"params": [p for p in mine if p.ndim > 1], "weight_decay": cfg.weight_decay, "lr_scale": scale},
            {"params": [p for p in mine if p.ndim <= 1], "weight_decay": 0.0, "lr_scale": scale},
        ]
    groups = [g for g in groups if g["params"]]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def lr_at(step: int, total: int, warmup: int, peak: float) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * progress))


def fit(
    model: nn.Module,
    data: Dataset,
    cfg: OptimConfig,
    loss_fn: LossFn,
    label: str,
    extra: nn.Module | None = None,
    resume_file: Path | None = None,
    head: nn.Module | None = None,
) -> dict:
    """Train `model` in place (and `extra`, whose parameters join the optimizer); returns the mean loss
    of the last epoch, the images/s rate, the device and the precision. Both modules end on the device
    they started on (the CPU for every stage), whatever device trained them.

    With `resume_file`, the whole training state (weights, optimizer, loss scaler, both random
    generators, step) is saved there atomically after every epoch, and a run that finds the file
    continues after its last epoch: the batches that follow are the ones an uninterrupted run would
    have seen. The file is removed when training finishes.

    In a distributed run (edgekit.distributed) rank 0 hands the job to the other ranks (`serve`), every
    rank trains on its shard of each global batch with gradients summed over the ranks, and only rank 0
    saves epoch checkpoints, recalibrates BatchNorm and keeps the result."""
    world = dist.world_size()
    if world > 1:
        dist.check_batch(label, cfg.batch_size, world)
        if dist.is_main():  # the others wait in serve() for this
            dist.broadcast_object(("fit", model, _data_to_send(data), cfg, loss_fn, label, extra, head))
    device = resolve_device(cfg.device)
    dtype = amp_dtype(cfg.amp, device.type)
    if device.type == "cpu" and cfg.amp in ("bf16", "fp16"):
        log.info(f"{label}: amp {cfg.amp} applies on CUDA only; training in fp32 on the CPU")
    home = next(model.parameters()).device
    to_training_layout(model, device, example_batch(data))
    if extra is not None:  # the feature adapter: trained on the student's features, never probed with images
        extra.to(device)
    _BUSY.append(label)
    try:
        with seeded(cfg.seed):  # dropout, stochastic depth: seeded here, the caller's RNG left as it was
            stats = _loop(model, data, cfg, loss_fn, label, extra, device, dtype, resume_file, head)
        if not dist.is_main():  # rank 0's model is the result: the others' copies are dropped
            return stats
        layers = recalibrate_bn(model, data, cfg.bn_recalibrate, cfg.batch_size, cfg.seed, device)
        if layers:
            stats["bn_recalibrated_layers"] = layers
            stats["bn_recalibrated_images"] = min(cfg.bn_recalibrate, len(data.train))
    finally:
        _BUSY.pop()
        to_home_layout(model, home)
        if extra is not None:
            extra.to(home)
    return {**stats, "device": device.type, "precision": precision_name(dtype)}


_SENT: list[Dataset] = []  # the data set the other ranks hold (sent once per run, not per fit)
_BUSY: list[str] = []  # the fit under way: a failure inside it leaves the other ranks mid-collective


def _data_to_send(data: Dataset) -> Dataset | None:
    if _SENT and _SENT[0] is data:
        return None
    _SENT[:] = [data]
    return data


def serve() -> None:
    """A rank other than 0: train in each of rank 0's fit calls, and compute its share of each map job
    (edgekit.sharding), until rank 0 sends None (its run ended)."""
    data: Dataset | None = None
    sharding.forget_folder()
    while (job := dist.broadcast_object(None)) is not None:
        if job[0] == sharding.MAP:
            sharding.serve_share(job)
            continue
        if job[0] == sharding.FOLDER:
            sharding.note_folder(job)
            continue
        _, model, sent, cfg, loss_fn, label, extra, head = job
        data = sent if sent is not None else data
        assert data is not None
        fit(model, data, cfg, loss_fn, label, extra=extra, head=head)


def release() -> None:
    """Rank 0, its run over (finished or failed between fit calls): the other ranks may exit. After a
    failure inside fit they are inside a gradient all-reduce, not waiting for a job: rank 0 just exits,
    and the launcher (or gloo's closed connection) stops them."""
    _SENT.clear()
    if not _BUSY:
        dist.broadcast_object(None)


def _drop_grads(params: list[nn.Parameter]) -> None:
    """A parameter without a gradient is left untouched by the optimizer (weight decay included)."""
    for p in params:
        p.grad = None


def _loop(model, data, cfg, loss_fn, label, extra, device, dtype, resume_file=None, head=None) -> dict[str, float]:
    gen = torch.Generator().manual_seed(cfg.seed)
    n = len(data.train)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    warmup = int(cfg.warmup_epochs * steps_per_epoch)
    opt = make_optimizer(model, cfg, extra, head)
    # Transfer learning: the backbone stays frozen (no update) for the first freeze_backbone_epochs.
    frozen_steps = int(getattr(cfg, "freeze_backbone_epochs", 0.0) * steps_per_epoch) if head is not None else 0
    head_ids = {id(p) for p in head.parameters()} if head is not None else set()
    backbone = [p for p in model.parameters() if id(p) not in head_ids] if frozen_steps else []
    scaler = grad_scaler(device, dtype)
    model.train()
    if extra is not None:
        extra.train()
    step, last_loss, rate, first = 0, float("nan"), 0.0, 0
    keyed = bool(getattr(loss_fn, "keyed", False))
    world, rank = dist.world_size(), dist.rank()
    fingerprint = {
        "images": n,
        "config": {k: v for k, v in vars(cfg).items() if k not in ("device", "amp")},
        "precision": precision_name(dtype),
        **({"world_size": world} if world > 1 else {}),  # another world size sees other batches per rank
    }
    saved = load_state(resume_file, device, fingerprint, label) if dist.is_main() else None
    if world > 1:  # every rank continues from rank 0's checkpoint (weights, optimizer, generators)
        saved = dist.broadcast_object(to_cpu(saved))
    trained = list(model.parameters()) + (list(extra.parameters()) if extra is not None else [])
    if saved is not None:
        model.load_state_dict(saved["model"])
        if extra is not None:
            extra.load_state_dict(saved["extra"])
        opt.load_state_dict(saved["optimizer"])
        if scaler is not None and saved["scaler"]:
            scaler.load_state_dict(saved["scaler"])
        gen.set_state(saved["generator"].cpu())
        torch.set_rng_state(saved["torch_rng"].cpu())
        first, step, last_loss = saved["epoch"] + 1, saved["step"], saved["last_loss"]
        if hasattr(loss_fn, "resume_at"):  # a schedule inside the loss (distill's alpha) continues, not restarts
            loss_fn.resume_at(step)
        if resume_file is not None:  # rank 0 (the others have no file of their own)
            log.info(f"{label}: resuming after epoch {first}/{cfg.epochs} from {resume_file.name}")
    for epoch in range(first, cfg.epochs):
        order = torch.randperm(n, generator=gen)
        bar = Progress(f"{label} epoch {epoch + 1}/{cfg.epochs}", n, work=TRAIN)  # counted by the run's ETA
        running, seen = 0.0, 0
        for start in range(0, n, cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            if len(idx) < world:  # a last batch too small to give every rank an image (at most world - 1)
                continue
            # Augmentation stays on the CPU with its seeded generator, so CPU and GPU runs see the same batches.
            # Every rank augments the whole global batch and keeps its shard: the generator stays in step on all
            # ranks, and a distributed run sees exactly the augmented images of a single-process run.
            images, flipped = augment(data.train.images[idx], cfg.augment_pad, cfg.augment_flip, gen)
            # Which view of which image each row is, for a loss that caches per view (KD's teacher logits);
            # a random crop makes every view new.
            keys = view_keys(idx, flipped) if keyed and cfg.augment_pad == 0 else None
            mine = dist.shard(torch.arange(len(idx)), rank, world) if world > 1 else None
            share = len(mine) / len(idx) if mine is not None else 1.0  # this rank's part of the batch's mean loss
            if mine is not None:
                images = images[mine]
                keys = keys[mine] if keys is not None else None
            x = normalize(images, data.mean, data.std).to(device, non_blocking=True)
            y = data.train.labels[idx if mine is None else idx[mine]].to(device, non_blocking=True)
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, warmup, cfg.lr) * group["lr_scale"]
            with autocast(device, dtype):
                loss = loss_fn(model, x, y, keys) if keyed else loss_fn(model, x, y)
            opt.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                _drop_grads(backbone if step < frozen_steps else [])
                if mine is not None:
                    dist.sum_gradients(trained, share)
                opt.step()
            else:  # fp16: scale the loss so small gradients do not flush to zero; steps with inf/nan are skipped
                scaler.scale(loss).backward()
                _drop_grads(backbone if step < frozen_steps else [])
                if mine is not None:  # an inf on one rank reaches all: every rank skips the same steps
                    dist.sum_gradients(trained, share)
                scaler.step(opt)
                scaler.update()
            step += 1
            running += loss.item() * len(y)
            seen += len(y)
            bar.update(len(idx), loss=running / seen)  # global images: the rate is the whole run's
        if world > 1:  # the mean over every rank's images
            running, seen_all = dist.all_reduce_sum([running, float(seen)])
            seen = int(seen_all)
        last_loss = running / max(seen, 1)
        rate = bar.done / max(1e-9, time.perf_counter() - bar.start)
        if resume_file is not None and epoch + 1 < cfg.epochs and dist.is_main():
            save_state(resume_file, epoch, step, model, extra, opt, scaler, gen, fingerprint, last_loss)
    if resume_file is not None and dist.is_main():
        resume_file.unlink(missing_ok=True)
    model.eval()
    if extra is not None:
        extra.eval()
    return {"final_loss": round(last_loss, 4), "images_per_s": round(rate, 1)}


@torch.no_grad()
def recalibrate_bn(model: nn.Module, data: Dataset, images: int, batch_size: int, seed: int, device=None) -> int:
    """Replace the running mean and variance of every BatchNorm of `model` by their average over
    `images` seeded training images (no augmentation), the rest of the model in eval mode (no dropout or
    stochastic depth). Returns how many BatchNorm layers were recalibrated; the model ends in eval mode."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    n = min(images, len(data.train))
    if not norms or n <= 0:
        return 0
    device = device or next(model.parameters()).device
    order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(seed))[:n]
    model.eval()
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches below
        m.train()
    try:
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            model(normalize(data.train.images[idx], data.mean, data.std).to(device))
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        model.eval()
    return len(norms)


@torch.no_grad()
def predict(
    model: nn.Module, split: Split, data: Dataset, batch_size: int = 500, label: str | None = None
) -> torch.Tensor:
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


def measured_rate(
    model: nn.Module, data: Dataset, cfg: OptimConfig, loss_fn: LossFn, steps: int = 2, min_seconds: float = 1.0
) -> float:
    """Training images per second of `model` on this machine, from timed optimizer steps on a copy: two
    warm-up steps, then at least `steps` and up to 20 until `min_seconds` have passed. The basis of a
    run's time estimate, measured, not assumed. (With one warm-up step and two timed ones, MobileNetV3 at
    28 px measured 414 img/s and trained at 861: the first steps pay for allocator and kernel set-up.)"""
    import copy

    device = resolve_device(cfg.device)
    dtype = amp_dtype(cfg.amp, device.type)
    trial = copy.deepcopy(model).to(device).train()
    opt = make_optimizer(trial, cfg)
    n = min(cfg.batch_size, len(data.train))
    x = normalize(data.train.images[:n], data.mean, data.std).to(device)
    y = data.train.labels[:n].to(device)

    def step() -> None:
        with autocast(device, dtype):
            loss = loss_fn(trial, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(2):
        step()
    timed, start = 0, time.perf_counter()
    while timed < steps or (timed < 20 and time.perf_counter() - start < min_seconds):
        step()
        timed += 1
    return n * timed / (time.perf_counter() - start)
