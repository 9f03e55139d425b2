"""load: build the zoo model for the data's classes and channels; load `weights` when given."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from edgekit.artifact import Artifact, ModelEntry
from edgekit.checkpoint import load_weights, save_state_dict
from edgekit.errors import EdgekitError
from edgekit.metrics import count_macs, count_params
from edgekit.zoo import create_model, resolve_name

NAME = "load"
SECTION = "model"


@dataclass
class Config:
    """`name`: zoo model or alias (`edgekit models`). `weights`: a state_dict file (trained or pruned
    edgekit checkpoint, or any matching state_dict); none means the train stage trains a baseline.
    `small_input`: stride-reduced stem for 28-64 px images; null picks it when the data is <= 64 px.
    `options`: extra keyword arguments for the model factory (e.g. width_mult)."""

    name: str = "mobilenet_v3"
    weights: str | None = None
    small_input: bool | None = None
    options: dict[str, Any] = field(default_factory=dict)


def skip(art, cfg: Config, ctx) -> str | None:
    return None


def build_model(cfg: Config, ctx):
    c, h, w = ctx.data.input_size
    small = cfg.small_input if cfg.small_input is not None else max(h, w) <= 64
    try:
        return create_model(cfg.name, num_classes=ctx.data.num_classes, in_chans=c, small_input=small, **cfg.options)
    except TypeError as exc:
        raise EdgekitError(f"model.options {cfg.options} not accepted by {cfg.name} ({exc}): remove or rename the option") from None


def run(art: Artifact, cfg: Config, ctx) -> dict:
    canonical = resolve_name(cfg.name)
    torch.manual_seed(ctx.recipe.train.seed)  # the initial weights are part of the recipe: same seed, same baseline
    model = build_model(cfg, ctx)
    if cfg.weights:
        load_weights(model, cfg.weights, canonical, ctx.data.input_size)
    model.eval()
    path = ctx.run_dir / "baseline.pt"
    save_state_dict(model, path)
    art.add(ModelEntry("baseline", "torch", "fp32", count_params(model), count_macs(model, ctx.data.input_size), path, model))
    art.info.update(model=canonical, classes=ctx.data.classes, mean=list(ctx.data.mean), std=list(ctx.data.std),
                    input_size=list(ctx.data.input_size), data=ctx.data.describe())
    return {"model": canonical, "weights": cfg.weights, "params": art.entries["baseline"].params, "macs": art.entries["baseline"].macs}
