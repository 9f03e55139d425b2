"""load: build the zoo model for the data's classes and channels; load `weights` when given."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from edgekit.artifact import Artifact, Role
from edgekit.checkpoint import load_state, load_weights, save_state_dict
from edgekit.metrics import count_macs, count_params
from edgekit.seeding import seeded
from edgekit.stages.base import Stage, register
from edgekit.stages.context import Context
from edgekit.zoo import resolve_name
from edgekit.zoo.for_data import build_for_input
from edgekit.zoo.pretrained import PRETRAINED_KEYWORD, pretrained_state_dict
from edgekit.zoo.user import UserModel, check_output, fit_head, user_model_name

log = logging.getLogger(__name__)


@dataclass
class Config:
    """`name`: zoo model or alias (`edgekit models`). `weights`: a state_dict file (trained or pruned
    edgekit checkpoint, or any matching state_dict), or `pretrained` for weights edgekit loads from an
    installed package (edgekit.zoo.pretrained); none means the train stage trains a baseline.
    `small_input`: stride-reduced stem for 28-64 px images; null picks it when the data is <= 64 px.
    `options`: extra keyword arguments for the model factory (e.g. width_mult)."""

    name: str = "mobilenet_v3"
    weights: str | None = None
    small_input: bool | None = None
    options: dict[str, Any] = field(default_factory=dict)


def build_model(cfg: Config, ctx: Context):
    """The recipe's model for this run's data, with fresh weights (resume rebuilds checkpoints into it)."""
    return build_for_input(cfg.name, ctx.data.input_size, ctx.data.num_classes, cfg.small_input, cfg.options)


def given_model(module: nn.Module, ctx: Context) -> tuple[nn.Module, dict | None]:
    """A copy of the module given from Python, its classifier fitted to the data's classes, in the zoo
    contract; refused unless it maps the data's images to (N, classes) logits."""
    net = copy.deepcopy(module).cpu()
    transfer = fit_head(net, ctx.data.num_classes)
    check_output(net, ctx.data.input_size, ctx.data.num_classes)
    model = UserModel(net, ctx.data.num_classes)
    if transfer:  # its path in the wrapped model, where the train stage finds it
        transfer["classifier"] = f"net.{transfer['classifier']}"
    return model, transfer


def run(art: Artifact, cfg: Config, ctx: Context) -> dict:
    transfer = None
    if ctx.model is not None:
        canonical = user_model_name(ctx.model)
        model, transfer = given_model(ctx.model, ctx)
    else:
        canonical = resolve_name(cfg.name)
        with seeded(ctx.recipe.train.seed):  # the initial weights are part of the recipe: same seed, same baseline
            model = build_model(cfg, ctx)
        if cfg.weights == PRETRAINED_KEYWORD:
            state = pretrained_state_dict(canonical)
            transfer = load_state(model, state, "pretrained weights", canonical, ctx.data.input_size, transfer=True)
        elif cfg.weights:
            transfer = load_weights(model, cfg.weights, canonical, ctx.data.input_size, transfer=True)
    if transfer:
        art.info.transfer = transfer
        log.info(
            "load: classifier %s re-initialised for %d classes (the weights were for %d); "
            "the train stage fine-tunes it",
            transfer["classifier"], transfer["classes"], transfer["checkpoint_classes"],
        )  # fmt: skip
    model.eval()
    path = ctx.run_dir / Role.BASELINE.spec.file
    save_state_dict(model, path)
    base = art.add(Role.BASELINE, path, count_params(model), count_macs(model, ctx.data.input_size), module=model)
    info = art.info
    info.model, info.classes, info.data = canonical, list(ctx.data.classes), ctx.data.describe()
    info.mean, info.std, info.input_size = list(ctx.data.mean), list(ctx.data.std), list(ctx.data.input_size)
    info.scale = ctx.data.pixel_scale
    weights = "given module" if ctx.model is not None else cfg.weights
    metrics = {"model": canonical, "weights": weights, "params": base.params, "macs": base.macs}
    return {**metrics, **({"transfer": transfer} if transfer else {})}


STAGE = register(Stage(name="load", section="model", config=Config, run=run, produces=(Role.BASELINE,)))
