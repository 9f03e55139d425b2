"""distill: recover the pruned student's accuracy by knowledge distillation (edgekit.distill).

The teacher is the unpruned baseline unless `teacher` names another zoo model with `teacher_weights`.
With `enabled: false` the student is fine-tuned with cross-entropy only, for comparison.
"""

from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import dataclass, field
from typing import Any

from edgekit.artifact import Artifact, Role
from edgekit.checkpoint import save_state_dict
from edgekit.config import ranged
from edgekit.distill import Objective, check_inputs as check_teacher_inputs, check_names, load_teacher
from edgekit.distill.config import KdConfig
from edgekit.distill.teacher_logits import shared as shared_logits
from edgekit.seeding import seeded
from edgekit.stages.base import Stage, register
from edgekit.stages.context import Context
from edgekit.training import fit
from edgekit.training_layout import teacher_placed


@dataclass
class Config(KdConfig):
    """`enabled`: KD from the teacher (true) or plain fine-tuning (false). `temperature` softens both
    distributions; `alpha` weights the KD term against cross-entropy. `feature_weight`: weight of the
    feature-map MSE through a learned 1x1 adapter (0 = logit KD only; 1.0 is a sensible start: the
    features of trained zoo models are O(1), so the term is then about as large as the logit loss).
    `alpha_end`: alpha moves linearly from `alpha` to `alpha_end` over the run (0.0 by default: the
    teacher's soft targets first, the labels alone at the end; null keeps alpha constant). `teacher`: a
    zoo model name (null = the unpruned baseline) with `teacher_weights` (its state_dict, required) and
    `teacher_options` (factory arguments, e.g. width_mult). Without random crops (`augment_pad` 0)
    the teacher's logits are cached per view of a training image (edgekit.distill.teacher_logits): in
    the demo the teacher ran on 105,018 of the distill stage's 180,000 images and on none of the rewrite
    stage's 120,000, which cut the two stages from 174 s and 92 s to 152 s and 66 s, same results."""

    enabled: bool = True
    epochs: int = ranged(3, 0, 10_000)
    lr: float = ranged(3e-3, 0.0, 10.0)
    warmup_epochs: float = ranged(0.0, 0.0, 100.0)
    feature_weight: float = ranged(0.0, 0.0, 1000.0)
    alpha_end: float | None = ranged(0.0, 0.0, 1.0)
    teacher: str | None = None
    teacher_weights: str | None = None
    teacher_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        check_names(self.teacher, self.teacher_weights)  # fails when the recipe is read, before any run


def check_inputs(cfg: Config) -> None:
    """Checks to run before a run folder is made: the named teacher resolves and its weights file exists."""
    check_teacher_inputs(cfg.teacher, cfg.teacher_weights)


def skip(art: Artifact, cfg: Config, ctx: Context) -> str | None:
    if Role.PRUNED not in art:
        return "nothing was pruned"
    if cfg.epochs == 0:
        return "distill.epochs is 0"
    return None


def pick_teacher(art: Artifact, cfg: Config, ctx: Context):
    if cfg.teacher is None:
        baseline = art[Role.BASELINE].module
        assert baseline is not None
        return baseline.eval(), "baseline"
    assert cfg.teacher_weights is not None  # Config refuses a teacher without weights
    teacher = load_teacher(
        cfg.teacher,
        cfg.teacher_weights,
        cfg.teacher_options,
        ctx.data.input_size,
        ctx.data.num_classes,
        ctx.recipe.model.small_input,
    )
    return teacher, cfg.teacher


def objective_for(
    student, teacher, cfg: Config, input_size: tuple[int, ...], train_images: int = 0, split_images=None
) -> Objective:
    """The loss of a distill run; `train_images` (the training split's size) times the epochs sets the
    length of the alpha schedule. With `split_images` (the images of the split it trains on) the
    teacher's logits are cached per view (edgekit.distill.teacher_logits), shared with later fits."""
    logits = shared_logits(teacher, split_images) if teacher is not None and split_images is not None else None
    with seeded(cfg.seed):  # the feature adapter's initial weights
        return Objective(
            student,
            teacher,
            input_size,
            temperature=cfg.temperature,
            alpha=cfg.alpha,
            feature_weight=cfg.feature_weight,
            alpha_end=cfg.alpha_end,
            total_steps=math.ceil(train_images / cfg.batch_size) * cfg.epochs,
            logits=logits,
        )


def run(art: Artifact, cfg: Config, ctx: Context) -> dict:
    pruned = art[Role.PRUNED]
    student = copy.deepcopy(pruned.module)
    assert student is not None
    teacher, teacher_name = pick_teacher(art, cfg, ctx) if cfg.enabled else (None, None)
    data = ctx.data
    objective = objective_for(student, teacher, cfg, data.input_size, len(data.train), data.train.images)
    with teacher_placed(teacher, cfg.device, ctx.data) if teacher is not None else contextlib.nullcontext():
        stats = fit(
            student,
            ctx.data,
            cfg,
            objective,
            "distill" if cfg.enabled else "finetune",
            extra=objective.adapter,
            resume_file=ctx.run_dir / ".distill.epoch.pt",
        )
    path = ctx.run_dir / Role.DISTILLED.spec.file
    save_state_dict(student, path)  # the student alone: the adapter is not part of the model
    art.add(
        Role.DISTILLED,
        path,
        pruned.params,
        pruned.macs,
        module=student,
        source=Role.PRUNED,
        name="distilled" if cfg.enabled else "finetuned",
    )
    mode = ("kd+features" if objective.adapter is not None else "kd") if cfg.enabled else "finetune"
    return {
        "mode": mode,
        "teacher": teacher_name,
        "feature_weight": objective.feature_weight,
        **stats,
        **objective.teacher_stats(),
        **objective.feature_stats(),
    }


STAGE = register(
    Stage(
        name="distill",
        section="distill",
        config=Config,
        run=run,
        skip=skip,
        consumes=(Role.PRUNED, Role.BASELINE),
        produces=(Role.DISTILLED,),
    )
)
