"""The work each stage plans, in the units the run's ETA measures (edgekit.progress.RunEta): images to
train, images to infer, engines to build and configured seconds of timing. It is read from the recipe
before a stage runs, so it is what the recipe asks for: a baseline found in the cache trains nothing, and
a quantize stage that has to fall back to mixed precision or QAT does more than planned. Stages without
an entry (load, export) do little and are left out of the estimate."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from edgekit.artifact import Artifact, Role
from edgekit.progress import ENGINE, INFER, SECONDS, TRAIN, Work
from edgekit.rewrite import applies_to
from edgekit.stages import prune, search, train
from edgekit.stages.base import Stage
from edgekit.stages.context import Context

# A plan is None where the recipe (or the model, once loaded) says the stage will not run; `rows` is how many
# models validate times.
Plan = Callable[[Any, Context, Artifact, int], Work | None]


def _train(r: Any, ctx: Context, art: Artifact, rows: int) -> Work | None:
    trains = r.train.epochs and (not train.weights_given(ctx) or r.train.finetune_given)
    return {TRAIN: r.train.epochs * len(ctx.data.train)} if trains else None


def _search(r: Any, ctx: Context, art: Artifact, rows: int) -> Work | None:
    """Each evaluation scores the proxy (recalibration and held-out images) and, with a latency target,
    times the candidate; the finalists are scored on the validation split and timed longer."""
    s = r.search
    if not search.searches(s):
        return None
    evals = s.budget_evals + s.fill_steps  # the fill's bisection evaluates like the search
    work: Work = {INFER: evals * (s.proxy_images + s.bn_images) + (s.finalists + 1) * len(ctx.data.val)}
    if s.measures_latency:
        # with the reference, each candidate's window is matched by as long a window of the unpruned model
        timed = 2 if s.latency_reference else 1
        per_model = evals * (s.latency_window_s + s.latency_warmup_s) + (s.finalists + 1) * s.final_latency_s
        work[SECONDS] = timed * per_model
    return work


def _prune(r: Any, ctx: Context, art: Artifact, rows: int) -> Work | None:
    if search.searches(r.search) or not prune.runs(r.prune):
        return None  # the search stage prunes
    return {TRAIN: r.prune.steps * r.prune.finetune_batches * r.prune.batch_size}


def _distill(r: Any, ctx: Context, art: Artifact, rows: int) -> Work | None:
    return {TRAIN: r.distill.epochs * len(ctx.data.train)} if search.prunes(r) and r.distill.epochs else None


def _quantize(r: Any, ctx: Context, art: Artifact, rows: int) -> Work | None:
    if not r.quantize.enabled:
        return None
    q = r.quantize
    work = {INFER: q.calib_images + (2 * q.sensitivity_images if q.check_drop else 0)}  # fp32 and int8 logits
    if q.check_drop and r.qat.mode == "on":
        work[TRAIN] = r.qat.epochs * len(ctx.data.train)
    return work


def _rewrite(r: Any, ctx: Context, art: Artifact, rows: int) -> Work | None:
    runs = r.rewrite.mode == "on" or (r.rewrite.mode == "auto" and r.quantize.enabled)
    model = _current_model(art)
    if model is not None and not applies_to(model, r.rewrite.drop_se):
        runs = False  # no activation or SE block to rewrite: the stage will skip
    return {TRAIN: r.rewrite.epochs * len(ctx.data.train)} if runs else None


def _current_model(art: Artifact) -> Any:
    try:
        return art.latest("torch").module
    except LookupError:  # before the load stage
        return None


def _build(r: Any, ctx: Context, art: Artifact, rows: int) -> Work | None:
    runs = r.build.enabled == "on" or (r.build.enabled == "auto" and r.target.tensorrt)
    return {ENGINE: len(r.build.sources)} if runs else None


def _validate(r: Any, ctx: Context, art: Artifact, rows: int) -> Work:
    v = r.validate
    images = min(v.val_images or len(ctx.data.val), len(ctx.data.val))
    # measure_interleaved, per model and batch size: a first-touch warm-up, then `rounds` slices of at
    # least min_seconds / rounds, each after a short warm-up. Floors set by the recipe, not measured.
    timed = 2 * (v.warmup_s + v.min_seconds + v.rounds * min(0.1, v.warmup_s))
    return {INFER: rows * images, SECONDS: rows * timed}


PLANS: dict[str, Plan] = {
    "train": _train,
    "search": _search,
    "prune": _prune,
    "distill": _distill,
    "quantize": _quantize,
    "rewrite": _rewrite,
    "build": _build,
    "validate": _validate,
}


def planned(stages: Sequence[Stage], art: Artifact, ctx: Context) -> dict[str, Work]:
    """Each of `stages`' planned work (the remaining stages, in run order). Validate's model count is the
    models made so far plus the roles the stages still to run declare: an upper estimate before the
    run, exact when validate starts (other runtimes' extra rows, OpenVINO or GPU, are not counted)."""
    runs = [s for s in stages if s.name not in PLANS or PLANS[s.name](ctx.recipe, ctx, art, 0) is not None]
    roles: set[Role] = set(art.entries) | {role for s in runs for role in s.produces}
    rows = max(1, len(roles))
    plans = {s.name: PLANS[s.name](ctx.recipe, ctx, art, rows) for s in runs if s.name in PLANS}
    return {name: work for name, work in plans.items() if work}
