"""prune: structured channel pruning with torch-pruning's dependency graph (logic in edgekit.pruning).

`ratio` is the fraction of channels removed from every prunable layer (torch-pruning's
`pruning_ratio`): 0.3 keeps 70% of each layer's channels, which cuts params and MACs by roughly half
(both scale with in x out channels). Coupled layers (residual adds, depthwise convs, SE gates) are
pruned together as one group; the classifier and the layers a model lists in
`pruning_ignored_layers()` keep their output channels. Instead of a ratio a run may give a target:
`target_macs` (fraction of the baseline's MACs to keep) or `target_latency_ms` (ONNX Runtime CPU p50
at batch 1); the ratio is then searched (edgekit.pruning.targets) and every probe is reported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import torch

from edgekit.artifact import Artifact, Role
from edgekit.checkpoint import save_state_dict
from edgekit.config import ranged
from edgekit.errors import EdgekitError
from edgekit.export import DEFAULT_OPSET
from edgekit.metrics import count_macs, count_params
from edgekit.pruning.iterative import prune_copy
from edgekit.pruning.targets import search_latency, search_macs, with_layer_ratios
from edgekit.stages.base import Stage, register
from edgekit.stages.context import Context

log = logging.getLogger(__name__)

SEARCH_KEYS = ("probes", "relaxed_layer_ratios")


@dataclass
class Config:
    """What drives the run (exactly one): `ratio` (fraction of each prunable layer's channels to remove,
    in [0, 1); 0 with no target and no layer_ratios skips pruning), `target_macs` (fraction of the
    baseline MACs to keep, in (0, 1]) or `target_latency_ms` (ONNX Runtime CPU p50 at batch 1, 1 thread).
    `importance`: l2 (default) or l1 group magnitude, bn_scale (BatchNorm |gamma|), taylor (first-order
    Taylor on `taylor_batches` cross-entropy batches) or random (a control).
    `scope`: uniform (every layer loses `ratio`) or global (channels ranked across layers; no layer
    loses more than `max_layer_ratio` of its channels). `steps`: iterative pruning steps, with
    `finetune_batches` batches of cross-entropy fine-tuning (AdamW, `finetune_lr`) between steps.
    `layer_ratios`: {module name: ratio} overrides for named layers (given alone, with ratio 0, only the
    named layers are pruned: what `edgekit search` writes). `round_to`: keep channel counts a
    multiple of this, the nearest one (8 by default: odd counts run slower in ONNX Runtime); 1 disables
    rounding.
    `batch_size` and `seed`: the Taylor and fine-tune batches. `latency_probe_s`: timed seconds per
    latency probe; `latency_probes`: bisection probes of a latency search."""

    ratio: float = ranged(0.0, 0.0, 1.0, hi_inclusive=False)
    importance: Literal["l2", "l1", "bn_scale", "taylor", "random"] = "l2"
    round_to: int = ranged(8, 1, 256)
    scope: Literal["uniform", "global"] = "uniform"
    max_layer_ratio: float = ranged(0.9, 0.0, 1.0, hi_inclusive=False)
    steps: int = ranged(1, 1, 100)
    finetune_batches: int = ranged(50, 0, 1_000_000)
    finetune_lr: float = ranged(1e-3, 0.0, 10.0)
    taylor_batches: int = ranged(8, 1, 10_000)
    batch_size: int = ranged(64, 1, 65_536)
    seed: int = 0
    layer_ratios: dict = field(default_factory=dict)
    target_macs: float | None = ranged(None, 0.0, 1.0)
    target_latency_ms: float | None = ranged(None, 0.0, 1e6)
    latency_probe_s: float = ranged(1.0, 0.05, 60.0)
    latency_probes: int = ranged(6, 1, 50)

    def __post_init__(self):
        drivers(self)  # conflicting targets fail when the recipe is read, before a run folder exists


def drivers(cfg: Config) -> list[str]:
    """The settings that drive the run; more than one is an error."""
    given = [k for k in ("ratio", "target_macs", "target_latency_ms") if getattr(cfg, k) not in (None, 0, 0.0)]
    if cfg.target_macs is not None and cfg.target_macs <= 0:
        raise EdgekitError(
            f"prune.target_macs = {cfg.target_macs} keeps no MACs: give the fraction of the baseline MACs to keep, in "
            "(0, 1], e.g. 0.5"
        )
    if cfg.target_latency_ms is not None and cfg.target_latency_ms <= 0:
        raise EdgekitError(f"prune.target_latency_ms = {cfg.target_latency_ms} is not a latency: give milliseconds > 0")
    if len(given) > 1:
        raise EdgekitError(
            f"prune: {' and '.join('prune.' + g for g in given)} are both set, but exactly one drives a run: keep one "
            "and remove the others"
        )
    return given


def runs(cfg: Config) -> bool:
    """Whether the recipe prunes: a ratio, a target, or per-layer ratios alone (what a search writes)."""
    return bool(drivers(cfg) or cfg.layer_ratios)


def skip(art: Artifact, cfg: Config, ctx: Context) -> str | None:
    if Role.PRUNED in art:
        return "the search stage pruned the model to the layer ratios it chose"
    return None if runs(cfg) else "prune.ratio is 0 and no prune.layer_ratios"


def prune_with_info(
    model: torch.nn.Module, cfg: Config, input_size: tuple[int, ...], data=None, opset: int = DEFAULT_OPSET
) -> tuple[torch.nn.Module, dict]:
    """Prune a copy of `model` as `cfg` says; returns (pruned model, what was done: ratio, probes).
    A latency target exports its probes at `opset`, as the export stage will."""
    given = drivers(cfg)
    if given == ["target_macs"]:
        assert cfg.target_macs is not None
        chosen, probes = search_macs(model, cfg, input_size, data, cfg.target_macs)
    elif given == ["target_latency_ms"]:
        assert cfg.target_latency_ms is not None
        chosen, probes = search_latency(model, cfg, input_size, data, cfg.target_latency_ms, opset)
    else:
        pruned, info = prune_copy(model, cfg, cfg.ratio, input_size, data)
        return pruned, {"ratio": cfg.ratio, **info}
    base_macs = count_macs(model, input_size)
    info = {
        "ratio": chosen.ratio,
        "probes": [{**p.record(base_macs), **({"chosen": True} if p is chosen else {})} for p in probes],
    }
    if chosen.relaxed:  # layers the MACs search gave a lower ratio, to land closer to the target
        info["relaxed_layer_ratios"] = dict(chosen.relaxed)
    if chosen.ms is not None:
        info["latency_ms_p50"] = chosen.ms
    assert chosen.model is not None  # every probe keeps the model it measured
    return chosen.model, info


def prune_model(model: torch.nn.Module, cfg: Config, input_size: tuple[int, ...], data=None) -> torch.nn.Module:
    """A pruned copy of `model` (taylor importance, fine-tunes between steps and targets need `data`)."""
    return prune_with_info(model, cfg, input_size, data)[0]


def add_pruned(art: Artifact, model: torch.nn.Module, ctx: Context) -> dict:
    """Save `model` as the run's pruned model and add it (the prune stage's, or the search stage's
    chosen one); returns its size against the baseline."""
    base = art[Role.BASELINE]
    path = ctx.run_dir / Role.PRUNED.spec.file
    save_state_dict(model, path)
    macs = count_macs(model, ctx.data.input_size)
    entry = art.add(Role.PRUNED, path, count_params(model), macs, module=model, source=Role.BASELINE)
    return {
        "params_before": base.params,
        "params_after": entry.params,
        "macs_before": base.macs,
        "macs_after": entry.macs,
        "macs_reduction": round(1 - entry.macs / base.macs, 4),
        "params_reduction": round(1 - entry.params / base.params, 4),
    }


def run(art: Artifact, cfg: Config, ctx: Context) -> dict:
    base = art[Role.BASELINE]
    assert base.module is not None
    size = ctx.data.input_size
    if cfg.target_latency_ms is not None and ctx.recipe.target.platform != "cpu":
        log.info(
            "prune: the latency target is measured in ONNX Runtime on this CPU, not on target "
            f"{ctx.recipe.target.platform}"
        )
    model, info = prune_with_info(base.module, cfg, size, ctx.data, ctx.recipe.export.opset)
    sizes = add_pruned(art, model, ctx)
    metrics = {
        "importance": cfg.importance,
        "scope": cfg.scope,
        "steps": cfg.steps,
        "round_to": cfg.round_to,
        **{
            k: v
            for k, v in (("target_macs", cfg.target_macs), ("target_latency_ms", cfg.target_latency_ms))
            if v is not None
        },
        **{k: v for k, v in info.items() if k not in SEARCH_KEYS},
        **({"latency_measured_on": "onnxruntime cpu, 1 thread, batch 1"} if cfg.target_latency_ms is not None else {}),
        **sizes,
    }
    if cfg.layer_ratios:
        metrics["layer_ratios"] = dict(cfg.layer_ratios)
    if "probes" in info:  # a mapping: report.md's one-line stage summary leaves it out, report.json keeps it
        metrics["search"] = {k: info[k] for k in SEARCH_KEYS if k in info}
    if cfg.round_to > 1:  # what rounding costs: the same pruning (one step, no fine-tune) without it
        same = with_layer_ratios(cfg, info.get("relaxed_layer_ratios", {}))
        unrounded, _ = prune_copy(
            base.module, same, info["ratio"], size, ctx.data, steps=1, finetune_batches=0, round_to=1
        )
        metrics["macs_after_round_to_1"] = count_macs(unrounded, size)
        metrics["params_after_round_to_1"] = count_params(unrounded)
    return metrics


STAGE = register(
    Stage(
        name="prune",
        section="prune",
        config=Config,
        run=run,
        skip=skip,
        consumes=(Role.BASELINE,),
        produces=(Role.PRUNED,),
    )
)
