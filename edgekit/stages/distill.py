"""distill: recover the pruned student's accuracy by knowledge distillation from the unpruned model.

loss = alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * CE(student, label)
(Hinton et al. 2015; T^2 keeps the soft-target gradients at the scale of the hard ones). With
`enabled: false` the student is fine-tuned with cross-entropy only, for comparison.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from edgekit.artifact import Artifact, ModelEntry
from edgekit.checkpoint import save_state_dict
from edgekit.config import ranged
from edgekit.training import OptimConfig, fit

NAME = "distill"
SECTION = "distill"


@dataclass
class Config(OptimConfig):
    """`enabled`: KD from the unpruned model (true) or plain fine-tuning (false). `temperature`
    softens both distributions; `alpha` weights the KD term against cross-entropy."""

    enabled: bool = True
    epochs: int = ranged(3, 0, 10_000)
    lr: float = ranged(3e-3, 0.0, 10.0)
    warmup_epochs: float = ranged(0.0, 0.0, 100.0)
    temperature: float = ranged(4.0, 0.1, 100.0)
    alpha: float = ranged(0.7, 0.0, 1.0)


def skip(art, cfg: Config, ctx) -> str | None:
    if "pruned" not in art.entries:
        return "nothing was pruned"
    if cfg.epochs == 0:
        return "distill.epochs is 0"
    return None


def kd_loss(student_logits, teacher_logits, labels, temperature: float, alpha: float) -> torch.Tensor:
    ce = F.cross_entropy(student_logits, labels)
    if alpha == 0:
        return ce
    t = temperature
    kl = F.kl_div(F.log_softmax(student_logits / t, dim=1), F.log_softmax(teacher_logits / t, dim=1), reduction="batchmean", log_target=True)
    return alpha * t * t * kl + (1 - alpha) * ce


def run(art: Artifact, cfg: Config, ctx) -> dict:
    import copy

    teacher = art.entries["baseline"].module.eval()
    student = copy.deepcopy(art.entries["pruned"].module)
    alpha = cfg.alpha if cfg.enabled else 0.0

    def loss_fn(model, x, y):
        logits = model(x)
        if alpha == 0:
            return F.cross_entropy(logits, y)
        with torch.no_grad():
            teacher_logits = teacher(x)
        return kd_loss(logits, teacher_logits, y, cfg.temperature, alpha)

    stats = fit(student, ctx.data, cfg, loss_fn, "distill" if cfg.enabled else "finetune")
    path = ctx.run_dir / "distilled.pt"
    save_state_dict(student, path)
    pruned = art.entries["pruned"]
    art.add(ModelEntry("distilled" if cfg.enabled else "finetuned", "torch", "fp32", pruned.params, pruned.macs, path, student))
    return {"mode": "kd" if cfg.enabled else "finetune", **stats}
