"""Distillation losses: logit KD (Hinton et al. 2015) and feature KD on the stage outputs (FitNets,
Romero et al. 2015) through a learned 1x1 adapter.

Feature KD matches the student's `forward_features` output to the teacher's: a 1x1 convolution maps
the student's channels to the teacher's (a pruned student has fewer), bilinear resizing aligns the
spatial size when the two architectures downsample differently, and the loss is the MSE between the
adapted student map and the teacher's. The adapter is trained with the student and then thrown away;
it never becomes part of the exported model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgekit.errors import EdgekitError
from edgekit.zoo.contract import method


def kd_loss(student_logits, teacher_logits, labels, temperature: float, alpha: float) -> torch.Tensor:
    """alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * CE(student, label);
    T^2 keeps the soft-target gradients at the scale of the hard ones."""
    ce = F.cross_entropy(student_logits, labels)
    if alpha == 0:
        return ce
    t = temperature
    kl = F.kl_div(
        F.log_softmax(student_logits / t, dim=1),
        F.log_softmax(teacher_logits / t, dim=1),
        reduction="batchmean",
        log_target=True,
    )
    return alpha * t * t * kl + (1 - alpha) * ce


def features_and_logits(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass giving both the stage output and the logits (the zoo contract: forward_features,
    then forward_head), so feature KD costs no second pass."""
    feats = method(model, "forward_features")(x)
    return feats, method(model, "forward_head")(feats)


def as_map(feats: torch.Tensor) -> torch.Tensor:
    """Features as an (N, C, H, W) map; pooled (N, C) features become 1x1 maps."""
    if feats.ndim == 4:
        return feats
    if feats.ndim == 2:
        return feats[:, :, None, None]
    raise EdgekitError(
        f"forward_features returned a {feats.ndim}-D tensor {tuple(feats.shape)}; feature distillation needs (N, C, "
        "H, W) or (N, C): set distill.feature_weight=0 for this model"
    )


class FeatureAdapter(nn.Module):
    """1x1 convolution from student to teacher channels, then bilinear resize to the teacher's size."""

    def __init__(self, student_channels: int, teacher_channels: int):
        super().__init__()
        self.proj = nn.Conv2d(student_channels, teacher_channels, 1)

    def forward(self, student_feats: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        y = self.proj(as_map(student_feats))
        if tuple(y.shape[-2:]) != tuple(size):
            y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
        return y


def feature_loss(adapter: FeatureAdapter, student_feats: torch.Tensor, teacher_feats: torch.Tensor) -> torch.Tensor:
    target = as_map(teacher_feats)
    return F.mse_loss(adapter(student_feats, target.shape[-2:]), target)


def check_contract(model: nn.Module, role: str) -> None:
    if not (hasattr(model, "forward_features") and hasattr(model, "forward_head")):
        raise EdgekitError(
            f"the {role} ({type(model).__name__}) has no forward_features/forward_head, which feature distillation "
            "needs: use a zoo model or set distill.feature_weight=0"
        )


@torch.no_grad()
def build_adapter(student: nn.Module, teacher: nn.Module, input_size: tuple[int, ...]) -> FeatureAdapter:
    """An adapter sized from one probe image through both models (in eval mode, modes restored after)."""
    check_contract(student, "student")
    check_contract(teacher, "teacher")
    shapes = []
    for model in (student, teacher):
        was_training = model.training
        device = next(model.parameters()).device
        shapes.append(
            as_map(method(model.eval(), "forward_features")(torch.zeros(1, *input_size, device=device))).shape
        )
        model.train(was_training)
    return FeatureAdapter(shapes[0][1], shapes[1][1])
