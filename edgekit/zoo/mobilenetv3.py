"""MobileNetV3 small/large (Howard et al., "Searching for MobileNetV3", ICCV 2019).

Layout and parameter names follow torchvision's implementation, so its state_dict files load as is.
"""

from __future__ import annotations

from functools import partial
from typing import TypedDict

import torch
from torch import nn

from edgekit.zoo.layers import ClassifierMixin, ConvBnAct, SqueezeExcite, init_weights, make_divisible
from edgekit.zoo.registry import register_model, torchvision_macs

# (kernel, expanded, out, use_se, activation, stride) per bottleneck; input channels chain from the previous row.
_LARGE = [
    (3, 16, 16, False, "RE", 1),
    (3, 64, 24, False, "RE", 2),
    (3, 72, 24, False, "RE", 1),
    (5, 72, 40, True, "RE", 2),
    (5, 120, 40, True, "RE", 1),
    (5, 120, 40, True, "RE", 1),
    (3, 240, 80, False, "HS", 2),
    (3, 200, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1),
    (3, 480, 112, True, "HS", 1),
    (3, 672, 112, True, "HS", 1),
    (5, 672, 160, True, "HS", 2),
    (5, 960, 160, True, "HS", 1),
    (5, 960, 160, True, "HS", 1),
]
_SMALL = [
    (3, 16, 16, True, "RE", 2),
    (3, 72, 24, False, "RE", 2),
    (3, 88, 24, False, "RE", 1),
    (5, 96, 40, True, "HS", 2),
    (5, 240, 40, True, "HS", 1),
    (5, 240, 40, True, "HS", 1),
    (5, 120, 48, True, "HS", 1),
    (5, 144, 48, True, "HS", 1),
    (5, 288, 96, True, "HS", 2),
    (5, 576, 96, True, "HS", 1),
    (5, 576, 96, True, "HS", 1),
]


class _BnArgs(TypedDict):
    bn_eps: float
    bn_momentum: float


_BN: _BnArgs = {"bn_eps": 0.001, "bn_momentum": 0.01}


class InvertedResidual(nn.Module):
    def __init__(self, in_ch: int, kernel: int, expanded: int, out_ch: int, use_se: bool, act: str, stride: int):
        super().__init__()
        act_layer = nn.Hardswish if act == "HS" else nn.ReLU
        self.use_res_connect = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if expanded != in_ch:
            layers.append(ConvBnAct(in_ch, expanded, 1, act=act_layer, **_BN))
        layers.append(ConvBnAct(expanded, expanded, kernel, stride, groups=expanded, act=act_layer, **_BN))
        if use_se:
            layers.append(SqueezeExcite(expanded, make_divisible(expanded // 4, 8), gate=nn.Hardsigmoid))
        layers.append(ConvBnAct(expanded, out_ch, 1, act=None, **_BN))
        self.block = nn.Sequential(*layers)
        self.out_channels = out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out + x if self.use_res_connect else out


class MobileNetV3(ClassifierMixin, nn.Module):
    """`small_input=True` (28-64 px images) runs the stem at stride 1, so the network downsamples 16x
    instead of 32x and a 28x28 image ends on a 2x2 map (not 1x1). Parameter count is unchanged."""

    classifier_path = "classifier.3"

    def __init__(
        self,
        config,
        last_channel: int,
        num_classes: int = 1000,
        in_chans: int = 3,
        width_mult: float = 1.0,
        small_input: bool = False,
        dropout: float = 0.2,
    ):
        super().__init__()
        self.num_classes = num_classes
        adjust = partial(make_divisible, divisor=8)
        first = adjust(16 * width_mult)
        layers: list[nn.Module] = [ConvBnAct(in_chans, first, 3, 1 if small_input else 2, act=nn.Hardswish, **_BN)]
        in_ch = first
        for k, exp, out, se, act, stride in config:
            out_ch = adjust(out * width_mult)
            layers.append(InvertedResidual(in_ch, k, adjust(exp * width_mult), out_ch, se, act, stride))
            in_ch = out_ch
        layers.append(ConvBnAct(in_ch, 6 * in_ch, 1, act=nn.Hardswish, **_BN))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_features = 6 * in_ch
        hidden = adjust(last_channel * width_mult)
        self.classifier = nn.Sequential(
            nn.Linear(6 * in_ch, hidden), nn.Hardswish(), nn.Dropout(dropout), nn.Linear(hidden, num_classes)
        )
        init_weights(self)  # torchvision's initialization

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        x = self.classifier[2](self.classifier[1](self.classifier[0](x)))  # head: Linear, Hardswish, Dropout
        return x if pre_logits else self.classifier[3](x)


_PAPER = "Howard et al., Searching for MobileNetV3, ICCV 2019"


@register_model(
    "mobilenet_v3_small",
    family="mobilenet_v3",
    paper=_PAPER,
    aliases=("mobilenet_v3",),
    **torchvision_macs("MobileNet_V3_Small_Weights", 0.057),
)
def mobilenet_v3_small(**kwargs) -> MobileNetV3:
    return MobileNetV3(_SMALL, 1024, **kwargs)


@register_model(
    "mobilenet_v3_large", family="mobilenet_v3", paper=_PAPER, **torchvision_macs("MobileNet_V3_Large_Weights", 0.217)
)
def mobilenet_v3_large(**kwargs) -> MobileNetV3:
    return MobileNetV3(_LARGE, 1280, **kwargs)
