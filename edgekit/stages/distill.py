"""distill: recover the pruned student's accuracy by knowledge distillation.

loss = alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * CE(student, label)
       + feature_weight * MSE(adapter(student features), teacher features)
(Hinton et al. 2015; T^2 keeps the soft-target gradients at the scale of the hard ones; the feature
term is FitNets-style, on the `forward_features` outputs, see edgekit.distill_losses). The teacher is
the unpruned baseline unless `teacher` names another zoo model with `teacher_weights`. With
`enabled: false` the student is fine-tuned with cross-entropy only, for comparison.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from edgekit.accelerator import resolve_device
from edgekit.artifact import Artifact, ModelEntry
from edgekit.checkpoint import save_state_dict
from edgekit.config import ranged
from edgekit.distill_losses import build_adapter, feature_loss, features_and_logits, kd_loss
from edgekit.distill_teacher import check_inputs as check_teacher_inputs
from edgekit.distill_teacher import check_names, load_teacher
from edgekit.training import OptimConfig, fit

NAME = "distill"
SECTION = "distill"

__all__ = ["Config", "Objective", "check_inputs", "kd_loss", "run", "skip"]


@dataclass
class Config(OptimConfig):
    """`enabled`: KD from the teacher (true) or plain fine-tuning (false). `temperature` softens both
    distributions; `alpha` weights the KD term against cross-entropy. `feature_weight`: weight of the
    feature-map MSE through a learned 1x1 adapter (0 = logit KD only; 1.0 is a sensible start: the
    features of trained zoo models are O(1), so the term is then about as large as the logit loss).
    `teacher`: a zoo model name (null = the unpruned baseline) with `teacher_weights` (its state_dict,
    required) and `teacher_options` (factory arguments, e.g. width_mult)."""

    enabled: bool = True
    epochs: int = ranged(3, 0, 10_000)
    lr: float = ranged(3e-3, 0.0, 10.0)
    warmup_epochs: float = ranged(0.0, 0.0, 100.0)
    temperature: float = ranged(4.0, 0.1, 100.0)
    alpha: float = ranged(0.7, 0.0, 1.0)
    feature_weight: float = ranged(0.0, 0.0, 1000.0)
    teacher: str | None = None
    teacher_weights: str | None = None
    teacher_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        check_names(self.teacher, self.teacher_weights)  # fails when the recipe is read, before any run


def check_inputs(cfg: Config) -> None:
    """Checks to run before a run folder is made: the named teacher resolves and its weights file exists."""
    check_teacher_inputs(cfg.teacher, cfg.teacher_weights)


def skip(art, cfg: Config, ctx) -> str | None:
    if "pruned" not in art.entries:
        return "nothing was pruned"
    if cfg.epochs == 0:
        return "distill.epochs is 0"
    return None


class Objective:
    """The distillation loss for `fit`: one forward pass per model per batch. With feature_weight > 0
    the logits come from forward_head on the forward_features output, and `adapter` (to be trained
    with the student, then discarded) maps student features to the teacher's."""

    def __init__(self, student, teacher, cfg: Config, input_size: tuple[int, ...]):
        self.teacher = teacher
        self.alpha = cfg.alpha if cfg.enabled else 0.0
        self.feature_weight = cfg.feature_weight if cfg.enabled else 0.0
        self.temperature = cfg.temperature
        self.adapter = build_adapter(student, teacher, input_size) if self.feature_weight > 0 else None
        self.feature_mse: list[torch.Tensor] = []  # per step, detached (no device sync per step)

    def __call__(self, model, x, y):
        if self.adapter is None:
            logits = model(x)
            if self.alpha == 0:
                return F.cross_entropy(logits, y)
            with torch.no_grad():
                teacher_logits = self.teacher(x)
            return kd_loss(logits, teacher_logits, y, self.temperature, self.alpha)
        feats, logits = features_and_logits(model, x)
        with torch.no_grad():
            teacher_feats, teacher_logits = features_and_logits(self.teacher, x)
        mse = feature_loss(self.adapter, feats, teacher_feats)
        self.feature_mse.append(mse.detach())
        return kd_loss(logits, teacher_logits, y, self.temperature, self.alpha) + self.feature_weight * mse

    def feature_stats(self, window: int = 20) -> dict[str, float]:
        """Mean feature MSE over the first and last `window` steps (at most a quarter of the run each):
        did the student's features move towards the teacher's?"""
        if not self.feature_mse:
            return {}
        values = torch.stack(self.feature_mse).float().cpu()
        window = max(1, min(window, len(values) // 4))
        return {"feature_mse_start": round(values[:window].mean().item(), 5), "feature_mse_end": round(values[-window:].mean().item(), 5)}


def pick_teacher(art: Artifact, cfg: Config, ctx):
    if cfg.teacher is None:
        return art.entries["baseline"].module.eval(), "baseline"
    return load_teacher(cfg.teacher, cfg.teacher_weights, cfg.teacher_options, ctx), cfg.teacher


def run(art: Artifact, cfg: Config, ctx) -> dict:
    student = copy.deepcopy(art.entries["pruned"].module)
    teacher, teacher_name = pick_teacher(art, cfg, ctx) if cfg.enabled else (None, None)
    objective = Objective(student, teacher, cfg, ctx.data.input_size)
    home = next(teacher.parameters()).device if teacher is not None else None
    if teacher is not None:  # the student and adapter are moved by fit; the teacher is ours to move
        teacher.to(resolve_device(cfg.device)).eval()
    try:
        stats = fit(student, ctx.data, cfg, objective, "distill" if cfg.enabled else "finetune", extra=objective.adapter,
                    resume_file=ctx.run_dir / ".distill.epoch.pt")
    finally:
        if teacher is not None:
            teacher.to(home)  # the baseline goes on to export and validate on the CPU
    path = ctx.run_dir / "distilled.pt"
    save_state_dict(student, path)  # the student alone: the adapter is not part of the model
    pruned = art.entries["pruned"]
    art.add(ModelEntry("distilled" if cfg.enabled else "finetuned", "torch", "fp32", pruned.params, pruned.macs, path, student))
    mode = ("kd+features" if objective.adapter is not None else "kd") if cfg.enabled else "finetune"
    return {"mode": mode, "teacher": teacher_name, "feature_weight": objective.feature_weight, **stats, **objective.feature_stats()}
