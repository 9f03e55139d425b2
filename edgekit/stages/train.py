"""train: train the baseline when no weights were given. The result is cached, keyed by model, data,
this config and the training code (TRAINING_CODE), so a second run with the same settings and the same
edgekit skips training; a damaged cache entry is discarded with a warning and the baseline trained again
(edgekit.cache)."""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import logging
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from edgekit.accelerator import amp_dtype, precision_name, resolve_device
from edgekit.artifact import Artifact, Role
from edgekit.cache import load_verified, store
from edgekit.checkpoint import save_state_dict
from edgekit.config import as_dict, ranged
from edgekit.fileio import atomic_write_json, sha256
from edgekit.paths import cache_root
from edgekit.progress import fmt_seconds
from edgekit.rewrite import applies_to
from edgekit.stages.base import Stage, register
from edgekit.stages.context import Context
from edgekit.stages.search import prunes
from edgekit.training import OptimConfig, fit, measured_rate

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the cache file's layout changes

# The modules whose code decides what the same settings train (besides the model's own module): their
# source is part of the cache key, so a change to them (channels_last, a new default augmentation) trains
# a new baseline instead of silently reusing one trained by the old code. A refactor costs one retrain.
TRAINING_CODE = (
    "edgekit.training",
    "edgekit.training_layout",
    "edgekit.data.transforms",
    "edgekit.data.arrays",
    "edgekit.seeding",
    __name__,
)


@dataclass
class Config(OptimConfig):
    """Baseline training: from scratch when no weights are given. With weights (model.weights, or a module
    given from Python) it is skipped, unless the classifier was re-initialised for the data's classes
    (transfer learning: then it fine-tunes) or `finetune_given` is true. `label_smoothing` softens the
    targets; `cache` reuses a baseline trained from scratch earlier with identical settings.
    Transfer learning: the backbone (all but the classifier) stays frozen for `freeze_backbone_epochs`
    and then learns at `backbone_lr_scale` times the learning rate."""

    epochs: int = ranged(3, 0, 10_000)
    label_smoothing: float = ranged(0.1, 0.0, 1.0, hi_inclusive=False)
    cache: bool = True
    finetune_given: bool = False
    freeze_backbone_epochs: float = ranged(0.0, 0.0, 10_000.0)
    backbone_lr_scale: float = ranged(1.0, 0.0, 1.0)


# Settings that act only on given weights, which are never cached: kept out of the cache key.
TRANSFER_KEYS = ("finetune_given", "freeze_backbone_epochs", "backbone_lr_scale")


def weights_given(ctx: Context) -> bool:
    return bool(ctx.recipe.model.weights) or ctx.model is not None


def skip(art: Artifact, cfg: Config, ctx: Context) -> str | None:
    if cfg.epochs == 0:
        return "train.epochs is 0"
    if weights_given(ctx) and not art.info.transfer and not cfg.finetune_given:
        return "weights given (train.finetune_given: true fine-tunes them)"
    return None


def cache_dir() -> Path:
    return cache_root("baselines")


def code_digest(modules: Iterable[str]) -> str:
    """A digest of the named modules' source files (a module without a file, as in a frozen build, counts
    by name only)."""
    h = hashlib.sha256()
    for name in modules:
        try:
            file = getattr(sys.modules.get(name) or importlib.import_module(name), "__file__", None)
        except ImportError:  # a module made at run time (a notebook's, say): its name is all there is
            file = None
        h.update(f"{name}:{sha256(file) if file else ''}\n".encode())
    return h.hexdigest()[:16]


def cache_key(ctx: Context, cfg: Config, model: nn.Module | None = None) -> str:
    """The baseline cache key: model and data identity, the training settings, torch's version, and the
    code that trains (TRAINING_CODE and, given the model, the module that defines it)."""
    data = ctx.data
    own = (type(model).__module__,) if model is not None else ()
    fingerprint = {
        "format": CACHE_FORMAT,
        "code": code_digest(TRAINING_CODE + own),
        "model": as_dict(ctx.recipe.model),
        "data": {
            "name": data.name,
            "train": len(data.train),
            "val": len(data.val),
            "classes": data.classes,
            "labels_sum": int(data.train.labels.sum()),
            "pixels_sum": int(data.train.images[:1000].sum()),
        },
        "train": {k: v for k, v in as_dict(cfg).items() if k not in ("cache", "device", "amp", *TRANSFER_KEYS)},
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
    use_cache = cfg.cache and not weights_given(ctx)  # a cache entry is a baseline trained from scratch
    cached = cache_dir() / f"{ctx.recipe.model.name}-{cache_key(ctx, cfg, model)}.pt"
    hit = load_verified(cached, _state_for(model)) if use_cache else None
    if hit:
        state, file = hit
        model.load_state_dict(state)
        model.eval()
        save_state_dict(model, entry.path)
        log.info(f"train: reusing cached baseline {file}")
        return {"cached": True, "cache_file": str(file)}

    loss_fn = SmoothedCrossEntropy(cfg.label_smoothing)
    _log_estimate(model, cfg, ctx, loss_fn)
    head = model.get_submodule(art.info.transfer["classifier"]) if art.info.transfer else None
    stats = fit(model, ctx.data, cfg, loss_fn, "train", resume_file=ctx.run_dir / ".train.epoch.pt", head=head)
    save_state_dict(model, entry.path)
    if use_cache and store(cached, lambda tmp: torch.save(model.state_dict(), tmp)):
        atomic_write_json(
            cached.with_suffix(".json"), {"recipe_model": as_dict(ctx.recipe.model), "train": as_dict(cfg), **stats}
        )
    return {"cached": False, **stats}


@dataclass
class SmoothedCrossEntropy:
    """The baseline's loss; a class, not a closure, so that it pickles to a distributed run's other ranks."""

    label_smoothing: float

    def __call__(self, m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(m(x), y, label_smoothing=self.label_smoothing)


def _state_for(model: nn.Module) -> Callable[[bytes], dict[str, torch.Tensor]]:
    """A cache loader: the cached state_dict, checked to fit `model` before any of it is copied in (a
    load_state_dict that fails halfway would leave the model half overwritten before retraining)."""

    def load(data: bytes) -> dict[str, torch.Tensor]:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        own = model.state_dict()
        if not isinstance(state, dict) or state.keys() != own.keys():
            raise ValueError("its tensor names differ from the model's")
        if any(not isinstance(state[k], torch.Tensor) or state[k].shape != own[k].shape for k in own):
            raise ValueError("its tensor shapes differ from the model's")
        return state

    return load


def _log_estimate(model, cfg: Config, ctx: Context, loss_fn) -> None:
    """Before training starts: how long training, distillation and the deployment rewrite's distillation
    will take, from measured steps."""
    rate = measured_rate(model, ctx.data, cfg, loss_fn)
    n = len(ctx.data.train)
    train_s = cfg.epochs * n / rate
    # Distillation runs the smaller pruned student plus the teacher's forward pass: about one baseline step.
    recipe = ctx.recipe
    pruned = prunes(recipe)
    distill_s = recipe.distill.epochs * n / rate if pruned and recipe.distill.epochs else 0.0
    rw = recipe.rewrite
    rewrites = rw.mode == "on" or (rw.mode == "auto" and recipe.quantize.enabled and applies_to(model, rw.drop_se))
    rewrite_s = rw.epochs * n / rate if rewrites else 0.0
    extra = "".join(
        f", {name} about {fmt_seconds(sec)}" for name, sec in (("distill", distill_s), ("rewrite", rewrite_s)) if sec
    )
    total = f", training in all about {fmt_seconds(train_s + distill_s + rewrite_s)}" if extra else ""
    log.info(
        "estimate: train about %s (%d epochs x %s images at %s img/s, measured)%s%s",
        fmt_seconds(train_s), cfg.epochs, f"{n:,}", f"{rate:,.0f}", extra, total,
    )  # fmt: skip


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
