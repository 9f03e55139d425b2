"""EfficientNet B0-B3 and EfficientNetV2-S.

B0-B3: Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", ICML 2019.
V2-S: Tan & Le, "EfficientNetV2: Smaller Models and Faster Training", ICML 2021.
Layout and parameter names follow torchvision's implementation (features.N.M.block..., MBConv with SE,
Fused-MBConv for V2), so its state_dict files load as is.

Pruning needs no help: torch-pruning couples the SE gate's expand conv (fc2) to the depthwise channels
through the elementwise multiply, and residual adds tie each stage's blocks together.
"""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import nn

from edgekit.zoo.layers import ClassifierMixin, ConvBnAct, SqueezeExcite, init_weights, make_divisible
from edgekit.zoo.registry import register_model, torchvision_macs

# (block, expand_ratio, kernel, stride, in, out, layers) per stage: paper Table 1 / EfficientNetV2 Table 4.
_B_STAGES = [
    ("mb", 1, 3, 1, 32, 16, 1),
    ("mb", 6, 3, 2, 16, 24, 2),
    ("mb", 6, 5, 2, 24, 40, 2),
    ("mb", 6, 3, 2, 40, 80, 3),
    ("mb", 6, 5, 1, 80, 112, 3),
    ("mb", 6, 5, 2, 112, 192, 4),
    ("mb", 6, 3, 1, 192, 320, 1),
]
_V2_S_STAGES = [
    ("fused", 1, 3, 1, 24, 24, 2),
    ("fused", 4, 3, 2, 24, 48, 4),
    ("fused", 4, 3, 2, 48, 64, 4),
    ("mb", 4, 3, 2, 64, 128, 6),
    ("mb", 6, 3, 1, 128, 160, 9),
    ("mb", 6, 3, 2, 160, 256, 15),
]


class StochasticDepth(nn.Module):
    """Drops the whole residual branch per sample ("row" mode) while training; identity in eval."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask.div_(keep)


class MBConv(nn.Module):
    """1x1 expand -> depthwise kxk -> SE (squeeze = block input // 4) -> 1x1 project, SiLU throughout."""

    def __init__(
        self, in_ch: int, out_ch: int, expand_ratio: float, kernel: int, stride: int, sd_prob: float, bn_eps: float
    ):
        super().__init__()
        self.use_res_connect = stride == 1 and in_ch == out_ch
        expanded = make_divisible(in_ch * expand_ratio, 8)
        layers: list[nn.Module] = []
        if expanded != in_ch:
            layers.append(ConvBnAct(in_ch, expanded, 1, act=nn.SiLU, bn_eps=bn_eps))
        layers += [
            ConvBnAct(expanded, expanded, kernel, stride, groups=expanded, act=nn.SiLU, bn_eps=bn_eps),
            SqueezeExcite(expanded, max(1, in_ch // 4), act=partial(nn.SiLU, inplace=True)),
            ConvBnAct(expanded, out_ch, 1, act=None, bn_eps=bn_eps),
        ]
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(sd_prob)
        self.out_channels = out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return self.stochastic_depth(out) + x if self.use_res_connect else out


class FusedMBConv(nn.Module):
    """EfficientNetV2's Fused-MBConv: a full kxk conv replaces expand + depthwise; no SE."""

    def __init__(
        self, in_ch: int, out_ch: int, expand_ratio: float, kernel: int, stride: int, sd_prob: float, bn_eps: float
    ):
        super().__init__()
        self.use_res_connect = stride == 1 and in_ch == out_ch
        expanded = make_divisible(in_ch * expand_ratio, 8)
        if expanded != in_ch:
            layers = [
                ConvBnAct(in_ch, expanded, kernel, stride, act=nn.SiLU, bn_eps=bn_eps),
                ConvBnAct(expanded, out_ch, 1, act=None, bn_eps=bn_eps),
            ]
        else:
            layers = [ConvBnAct(in_ch, out_ch, kernel, stride, act=nn.SiLU, bn_eps=bn_eps)]
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(sd_prob)
        self.out_channels = out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return self.stochastic_depth(out) + x if self.use_res_connect else out


class EfficientNet(ClassifierMixin, nn.Module):
    """`stages` rows are scaled by `width` (compound width coefficient x `width_mult`, channels rounded to
    multiples of 8 as torchvision does, so 1.0 is exact) and `depth` (layers rounded up).
    `small_input=True` runs the stem at stride 1 (16x downsampling, a 32x32 image ends on 2x2);
    parameter count unchanged. Stochastic depth (linearly growing to `stochastic_depth_prob`) acts only
    in training."""

    classifier_path = "classifier.1"

    def __init__(
        self,
        stages,
        width: float = 1.0,
        depth: float = 1.0,
        last_channel: int | None = None,
        dropout: float = 0.2,
        bn_eps: float = 1e-5,
        num_classes: int = 1000,
        in_chans: int = 3,
        small_input: bool = False,
        width_mult: float = 1.0,
        stochastic_depth_prob: float = 0.2,
    ):
        super().__init__()
        self.num_classes = num_classes
        width *= width_mult
        rows = [
            (kind, e, k, s, make_divisible(i * width, 8), make_divisible(o * width, 8), math.ceil(n * depth))
            for kind, e, k, s, i, o, n in stages
        ]
        total, block_id = sum(r[-1] for r in rows), 0
        layers: list[nn.Module] = [
            ConvBnAct(in_chans, rows[0][4], 3, 1 if small_input else 2, act=nn.SiLU, bn_eps=bn_eps)
        ]
        for kind, expand, kernel, stride, in_ch, out_ch, n in rows:
            block = MBConv if kind == "mb" else FusedMBConv
            stage = []
            for i in range(n):
                sd_prob = stochastic_depth_prob * block_id / total
                stage.append(
                    block(in_ch if i == 0 else out_ch, out_ch, expand, kernel, stride if i == 0 else 1, sd_prob, bn_eps)
                )
                block_id += 1
            layers.append(nn.Sequential(*stage))
        last_in = rows[-1][5]
        last_out = make_divisible(last_channel * width_mult, 8) if last_channel else 4 * last_in
        layers.append(ConvBnAct(last_in, last_out, 1, act=nn.SiLU, bn_eps=bn_eps))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_features = last_out
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True), nn.Linear(last_out, num_classes))
        init_weights(
            self,
            linear=lambda m: nn.init.uniform_(m.weight, -1 / math.sqrt(m.out_features), 1 / math.sqrt(m.out_features)),
        )  # torchvision's initialization

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.classifier[0](torch.flatten(self.avgpool(x), 1))  # dropout
        return x if pre_logits else self.classifier[1](x)


_PAPER = "Tan & Le, EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks, ICML 2019"
_V2_PAPER = "Tan & Le, EfficientNetV2: Smaller Models and Faster Training, ICML 2021"


@register_model(
    "efficientnet_b0",
    family="efficientnet",
    paper=_PAPER,
    aliases=("efficientnet",),
    **torchvision_macs("EfficientNet_B0_Weights", 0.386),
)
def efficientnet_b0(**kwargs) -> EfficientNet:
    return EfficientNet(_B_STAGES, 1.0, 1.0, **{"dropout": 0.2, **kwargs})


@register_model(
    "efficientnet_b1",
    family="efficientnet",
    paper=_PAPER,
    input_size=(3, 240, 240),
    **torchvision_macs("EfficientNet_B1_Weights", 0.687),
)
def efficientnet_b1(**kwargs) -> EfficientNet:
    return EfficientNet(_B_STAGES, 1.0, 1.1, **{"dropout": 0.2, **kwargs})


# The paper's B2 resolution (260); torchvision's published weights evaluate at 288.
@register_model(
    "efficientnet_b2",
    family="efficientnet",
    paper=_PAPER,
    input_size=(3, 260, 260),
    published_macs=1000,
    macs_source="Tan & Le 2019, Table 2: B2 1.0B FLOPs (multiply-adds) at 260 px (torchvision's 1.088 is at 288 px)",
)
def efficientnet_b2(**kwargs) -> EfficientNet:
    return EfficientNet(_B_STAGES, 1.1, 1.2, **{"dropout": 0.3, **kwargs})


@register_model(
    "efficientnet_b3",
    family="efficientnet",
    paper=_PAPER,
    input_size=(3, 300, 300),
    **torchvision_macs("EfficientNet_B3_Weights", 1.827),
)
def efficientnet_b3(**kwargs) -> EfficientNet:
    return EfficientNet(_B_STAGES, 1.2, 1.4, **{"dropout": 0.3, **kwargs})


@register_model(
    "efficientnet_v2_s",
    family="efficientnet_v2",
    paper=_V2_PAPER,
    input_size=(3, 384, 384),
    aliases=("efficientnet_v2",),
    **torchvision_macs("EfficientNet_V2_S_Weights", 8.366),
)
def efficientnet_v2_s(**kwargs) -> EfficientNet:
    return EfficientNet(_V2_S_STAGES, last_channel=1280, bn_eps=1e-3, **{"dropout": 0.2, **kwargs})
