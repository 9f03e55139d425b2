"""train: train the baseline when no weights were given. The result is cached, keyed by model, data and
this config, so a second run with the same settings skips training."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from edgekit.accelerator import amp_dtype, precision_name, resolve_device
from edgekit.artifact import Artifact, Role
from edgekit.checkpoint import read_state_dict, save_state_dict
from edgekit.config import as_dict, ranged
from edgekit.fileio import atomic_write_json
from edgekit.paths import cache_root
from edgekit.stages.base import Stage, register
from edgekit.stages.context import Context
from edgekit.training import OptimConfig, fit

NAME = "train"
SECTION = "train"
CACHE_FORMAT = 1  # bump when training code changes results, to invalidate old cache entries


@dataclass
class Config(OptimConfig):
    """Baseline training (used only when model.weights is not set). `label_smoothing` softens the
    targets; `cache` reuses a baseline trained earlier with identical settings."""

    epochs: int = ranged(3, 0, 10_000)
    label_smoothing: float = ranged(0.1, 0.0, 1.0, hi_inclusive=False)
    cache: bool = True


def skip(art: Artifact, cfg: Config, ctx: Context) -> str | None:
    if ctx.recipe.model.weights:
        return "weights given"
    if cfg.epochs == 0:
        return "train.epochs is 0"
    return None


def cache_dir() -> Path:
    return cache_root("baselines")


def cache_key(ctx: Context, cfg: Config) -> str:
    data = ctx.data
    fingerprint = {
        "format": CACHE_FORMAT,
        "model": as_dict(ctx.recipe.model),
        "data": {
            "name": data.name,
            "train": len(data.train),
            "val": len(data.val),
            "classes": data.classes,
            "labels_sum": int(data.train.labels.sum()),
            "pixels_sum": int(data.train.images[:1000].sum()),
        },
        "train": {k: v for k, v in as_dict(cfg).items() if k not in ("cache", "device", "amp")},
        "torch": torch.__version__.split("+")[0],
    }
    # Where and in which precision it trains changes the weights only off the CPU (CPU training is
    # always fp32), so CPU keys stay as they were and a GPU-trained baseline gets its own entry.
    device = resolve_device(cfg.device)
    if device.type != "cpu":
        fingerprint["device"] = [device.type, precision_name(amp_dtype(cfg.amp, device.type))]
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]


def run(art: Artifact, cfg: Config, ctx: Context) -> dict:
    entry = art[Role.BASELINE]
    model = entry.module
    assert model is not None  # the load stage keeps the baseline in memory
    cached = cache_dir() / f"{ctx.recipe.model.name}-{cache_key(ctx, cfg)}.pt"
    if cfg.cache and cached.is_file():
        model.load_state_dict(read_state_dict(cached))
        model.eval()
        save_state_dict(model, entry.path)
        print(f"train: reusing cached baseline {cached}", flush=True)
        return {"cached": True, "cache_file": str(cached)}

    def loss_fn(m, x, y):
        return F.cross_entropy(m(x), y, label_smoothing=cfg.label_smoothing)

    stats = fit(model, ctx.data, cfg, loss_fn, "train", resume_file=ctx.run_dir / ".train.epoch.pt")
    save_state_dict(model, entry.path)
    if cfg.cache:
        save_state_dict(model, cached)
        atomic_write_json(
            cached.with_suffix(".json"), {"recipe_model": as_dict(ctx.recipe.model), "train": as_dict(cfg), **stats}
        )
    return {"cached": False, **stats}


# Trains the baseline in place: it consumes and produces the same role.
STAGE = register(
    Stage(
        name="train",
        section="train",
        config=Config,
        run=run,
        skip=skip,
        consumes=(Role.BASELINE,),
        produces=(Role.BASELINE,),
    )
)
