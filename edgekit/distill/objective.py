"""The distillation loss that `training.fit` minimises: one forward pass per model per batch.

loss = alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * CE(student, label)
       + feature_weight * MSE(adapter(student features), teacher features)
With alpha 0 and feature_weight 0 (or no teacher) it is plain cross-entropy fine-tuning. With
`alpha_end`, alpha moves linearly from `alpha` to `alpha_end` over `total_steps` training steps (hard
labels phased in, or out, on a schedule)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgekit.distill.losses import build_adapter, feature_loss, features_and_logits, kd_loss
from edgekit.distill.teacher_logits import TeacherLogits


class Objective:
    """With feature_weight > 0 the logits come from forward_head on the forward_features output, and
    `adapter` (to be trained with the student, then discarded) maps student features to the teacher's.
    With `logits` (edgekit.distill.teacher_logits) logit KD reuses the teacher's outputs on views of the
    training images it has seen before; training.fit passes each batch's view keys (`keyed`)."""

    keyed = True  # training.fit passes `keys`: which view of which training image each row of x is

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module | None,
        input_size: tuple[int, ...],
        *,
        temperature: float,
        alpha: float,
        feature_weight: float = 0.0,
        alpha_end: float | None = None,
        total_steps: int = 0,
        logits: TeacherLogits | None = None,
    ):
        self.teacher = teacher
        self.logits = logits if teacher is not None else None
        self.teacher_computed = 0  # images the teacher ran on, and those whose logits came from the cache
        self.teacher_reused = 0
        self.alpha = alpha if teacher is not None else 0.0
        self.alpha_end = alpha_end if teacher is not None and alpha_end is not None else self.alpha
        self.total_steps = max(1, total_steps)
        self.steps = 0  # training steps seen (calls with the model in training mode)
        self.feature_weight = feature_weight if teacher is not None else 0.0
        self.temperature = temperature
        self.adapter = (
            build_adapter(student, teacher, input_size) if teacher is not None and self.feature_weight > 0 else None
        )
        self.feature_mse: list[torch.Tensor] = []  # per step, detached (no device sync per step)

    def resume_at(self, steps: int) -> None:
        """Continue a resumed training run's schedule after `steps` training steps (training.fit calls it)."""
        self.steps = steps

    def alpha_now(self) -> float:
        done = min(1.0, self.steps / self.total_steps)
        return self.alpha + (self.alpha_end - self.alpha) * done

    def __call__(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, keys: torch.Tensor | None = None
    ) -> torch.Tensor:
        alpha = self.alpha_now()
        if model.training:
            self.steps += 1
        if self.adapter is None:
            logits = model(x)
            if alpha == 0 or self.teacher is None:
                return F.cross_entropy(logits, y)
            with torch.no_grad():
                teacher_logits = self._teacher_logits(x, keys)
            return kd_loss(logits, teacher_logits, y, self.temperature, alpha)
        assert self.teacher is not None  # an adapter exists only with a teacher
        feats, logits = features_and_logits(model, x)
        with torch.no_grad():
            teacher_feats, teacher_logits = features_and_logits(self.teacher, x)
        mse = feature_loss(self.adapter, feats, teacher_feats)
        self.feature_mse.append(mse.detach())
        return kd_loss(logits, teacher_logits, y, self.temperature, alpha) + self.feature_weight * mse

    def _teacher_logits(self, x: torch.Tensor, keys: torch.Tensor | None) -> torch.Tensor:
        assert self.teacher is not None
        if self.logits is None or keys is None:
            self.teacher_computed += len(x)
            return self.teacher(x)
        out, computed = self.logits(self.teacher, x, keys)
        self.teacher_computed += computed
        self.teacher_reused += len(x) - computed
        return out

    def teacher_stats(self) -> dict[str, int]:
        """How many training images the teacher ran on, and how many logits the cache gave instead."""
        if not self.teacher_computed and not self.teacher_reused:
            return {}
        return {"teacher_images": self.teacher_computed, "teacher_logits_reused": self.teacher_reused}

    def feature_stats(self, window: int = 20) -> dict[str, float]:
        """Mean feature MSE over the first and last `window` steps (at most a quarter of the run each):
        did the student's features move towards the teacher's?"""
        if not self.feature_mse:
            return {}
        values = torch.stack(self.feature_mse).float().cpu()
        window = max(1, min(window, len(values) // 4))
        return {
            "feature_mse_start": round(values[:window].mean().item(), 5),
            "feature_mse_end": round(values[-window:].mean().item(), 5),
        }
