"""Quantization-aware fine-tuning (QAT) with knowledge distillation from the float model.

Design. Every Conv2d/Linear of a copy of the model is wrapped so that, during fine-tuning, it sees
what ONNX Runtime's Q/DQ model will compute:
  - weights: per-output-channel symmetric int8, scale = max|w| / 127, zero point 0, values in
    [-127, 127] (ORT's symmetric per-channel S8 weights; with per_channel false, one scale per tensor);
  - inputs: per-tensor fake quantization with ranges tracked as an exponential moving average of the
    batch min/max (U8 asymmetric for the cpu target, symmetric S8 for tensorrt, as the quantizer will
    calibrate them);
both through torch.fake_quantize_* (straight-through estimator for the gradient). The loss is
edgekit.distill.losses.kd_loss against the frozen float model's logits. Afterwards the wrappers are
removed (the fine-tuned float weights stay), the model is exported with edgekit.export at the run's opset,
and quantized by the same calibrate + quantize_static path as plain int8, so the output has exactly
the same form. The torch ranges are only a training device: ORT calibrates the fine-tuned model anew.

Why fake-quantizing the raw conv weight is right although the exporter folds BatchNorm into it: the
folded weight is the raw weight times one constant per output channel, and symmetric per-channel
quantization commutes with a per-channel scale (q(c*w) = c*q(w) for the max|w|/127 scale), so the
grid learned here is the grid of the folded weight ORT quantizes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from edgekit.config import ranged
from edgekit.distill.config import KdConfig
from edgekit.distill.losses import kd_loss
from edgekit.training import OptimConfig, fit
from edgekit.training_layout import teacher_placed


@dataclass
class QatConfig(KdConfig):
    """The recipe's `qat` section: quantization-aware fine-tuning with KD from the float model, run
    inside the quantize stage's int8 check. `mode`: auto (only when mixed precision cannot meet the
    allowed drop), off or on. The optimiser settings are QAT's own: `epochs` at peak learning rate `lr`
    without warm-up; `temperature` and `alpha` weight the KD loss as in distillation. `bn_recalibrate`
    is 0: QAT starts from a model whose statistics are already right and moves it little (lr 1e-4)."""

    mode: Literal["auto", "off", "on"] = "auto"
    epochs: int = ranged(1, 1, 1000)
    lr: float = ranged(1e-4, 0.0, 1.0)
    warmup_epochs: float = ranged(0.0, 0.0, 100.0)
    bn_recalibrate: int = ranged(0, 0, 10_000_000)


class FakeQuant(nn.Module):
    """Wraps a Conv2d or Linear: fake-quantized weight (per-channel symmetric S8) and input (EMA ranges)."""

    layer: nn.Conv2d | nn.Linear
    lo: torch.Tensor  # buffers, declared for the type checker
    hi: torch.Tensor
    seen: torch.Tensor

    def __init__(self, layer: nn.Conv2d | nn.Linear, per_channel: bool, symmetric_act: bool, momentum: float = 0.01):
        super().__init__()
        self.layer = layer
        self.per_channel, self.symmetric_act, self.momentum = per_channel, symmetric_act, momentum
        self.register_buffer("lo", torch.zeros(()))
        self.register_buffer("hi", torch.zeros(()))
        self.register_buffer("seen", torch.zeros((), dtype=torch.bool))

    def weight_fq(self) -> torch.Tensor:
        w = self.layer.weight.float()
        if self.per_channel:
            amax = w.detach().abs().flatten(1).amax(1).clamp_min(1e-8)
            scale = amax / 127.0
            zp = torch.zeros_like(scale, dtype=torch.int32)
            return torch.fake_quantize_per_channel_affine(w, scale, zp, 0, -127, 127)
        scale = (w.detach().abs().max().clamp_min(1e-8) / 127.0).reshape(1)
        return torch.fake_quantize_per_tensor_affine(
            w, scale, torch.zeros(1, dtype=torch.int32, device=w.device), -127, 127
        )

    def input_fq(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if self.training:
            with torch.no_grad():
                lo, hi = x.min(), x.max()
                if not bool(self.seen):
                    self.lo.copy_(lo)
                    self.hi.copy_(hi)
                    self.seen.fill_(True)
                else:
                    self.lo.lerp_(lo, self.momentum)
                    self.hi.lerp_(hi, self.momentum)
        if not bool(self.seen):
            return x
        lo, hi = self.lo.clamp(max=0.0), self.hi.clamp(min=0.0)  # the range always holds 0, as in ORT
        if self.symmetric_act:
            scale = (torch.maximum(-lo, hi) / 127.0).clamp_min(1e-8).reshape(1)
            zp = torch.zeros(1, dtype=torch.int32, device=x.device)
            return torch.fake_quantize_per_tensor_affine(x, scale, zp, -127, 127)
        scale = ((hi - lo) / 255.0).clamp_min(1e-8).reshape(1)
        zp = torch.round(-lo / scale).clamp(0, 255).to(torch.int32).reshape(1)
        return torch.fake_quantize_per_tensor_affine(x, scale, zp, 0, 255)

    def forward(self, x):
        x, w = self.input_fq(x), self.weight_fq()
        if isinstance(self.layer, nn.Linear):
            return F.linear(x, w, self.layer.bias)
        return self.layer._conv_forward(x, w, self.layer.bias)


def insert_fake_quant(model: nn.Module, per_channel: bool, symmetric_act: bool) -> list[FakeQuant]:
    """Replace every Conv2d/Linear of `model` in place by a FakeQuant wrapper around it."""
    wrappers = []
    for parent in list(model.modules()):
        if isinstance(parent, FakeQuant):
            continue
        for name, child in list(parent.named_children()):
            if isinstance(child, (nn.Conv2d, nn.Linear)):
                wrapper = FakeQuant(child, per_channel, symmetric_act)
                setattr(parent, name, wrapper)
                wrappers.append(wrapper)
    return wrappers


def strip_fake_quant(model: nn.Module) -> nn.Module:
    """Put the wrapped layers (with their fine-tuned weights) back."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, FakeQuant):
                setattr(parent, name, child.layer)
    return model


class _KD:
    def __init__(self, teacher: nn.Module, temperature: float, alpha: float):
        self.teacher, self.temperature, self.alpha = teacher, temperature, alpha

    def __call__(self, model, x, y):
        logits = model(x)
        with torch.no_grad():
            teacher_logits = self.teacher(x)
        return kd_loss(logits.float(), teacher_logits.float(), y, self.temperature, self.alpha)


def qat_finetune(
    model: nn.Module, data, optim: OptimConfig, per_channel: bool, symmetric_act: bool, temperature: float, alpha: float
) -> tuple[nn.Module, dict]:
    """Fine-tune a copy of `model` with fake quantization and KD from `model`; returns the float copy
    (fake quantization removed) in eval mode on the CPU, and the training stats."""
    teacher = copy.deepcopy(model).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    student = copy.deepcopy(model)
    wrappers = insert_fake_quant(student, per_channel, symmetric_act)
    with teacher_placed(teacher, optim.device, data):
        stats = fit(student, data, optim, _KD(teacher, temperature, alpha), "qat")
    strip_fake_quant(student)
    return student.cpu().eval(), {**stats, "fake_quant_layers": len(wrappers)}
