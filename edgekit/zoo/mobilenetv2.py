"""MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018).

Layout and parameter names follow torchvision's implementation (features.N, InvertedResidual `conv`,
classifier Dropout + Linear), so its state_dict files load as is.
"""

from __future__ import annotations

import torch
from torch import nn

from edgekit.zoo.layers import ClassifierMixin, ConvBnAct, DropoutLinearHead, init_weights, make_divisible
from edgekit.zoo.registry import register_model, torchvision_macs

# (expansion t, channels c, repeats n, first stride s), Table 2 of the paper.
_SETTING = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


class InvertedResidual(nn.Module):
    """1x1 expand (skipped when t == 1), 3x3 depthwise, linear 1x1 projection; residual when shapes match."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = round(in_ch * expand_ratio)
        self.use_res_connect = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBnAct(in_ch, hidden, 1, act=nn.ReLU6))
        layers += [
            ConvBnAct(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6),
            nn.Conv2d(hidden, out_ch, 1, bias=False),  # linear bottleneck: no activation
            nn.BatchNorm2d(out_ch),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(DropoutLinearHead, ClassifierMixin, nn.Module):
    """`alpha` is the paper's width multiplier (the named variants, torchvision's `width_mult`);
    `width_mult` narrows further for tests. Channels are `make_divisible(c * alpha * width_mult, 8)`;
    the last conv is `make_divisible(1280 * max(1, alpha) * width_mult, 8)`: as in torchvision it stays
    1280 for alpha <= 1, and unlike torchvision's argument, the test `width_mult` narrows it too.

    `small_input=True` (28-64 px images) runs the stem at stride 1, so the network downsamples 16x
    instead of 32x (a 28x28 image ends on a 2x2 map). Parameter count is unchanged."""

    def __init__(
        self,
        alpha: float = 1.0,
        num_classes: int = 1000,
        in_chans: int = 3,
        small_input: bool = False,
        width_mult: float = 1.0,
        dropout: float = 0.2,
    ):
        super().__init__()
        self.num_classes = num_classes
        in_ch = make_divisible(32 * alpha * width_mult, 8)
        last = make_divisible(1280 * max(1.0, alpha) * width_mult, 8)
        layers: list[nn.Module] = [ConvBnAct(in_chans, in_ch, 3, 1 if small_input else 2, act=nn.ReLU6)]
        for t, c, n, s in _SETTING:
            out_ch = make_divisible(c * alpha * width_mult, 8)
            for i in range(n):
                layers.append(InvertedResidual(in_ch, out_ch, s if i == 0 else 1, t))
                in_ch = out_ch
        layers.append(ConvBnAct(in_ch, last, 1, act=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_features = last
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))
        init_weights(self)  # torchvision's initialization

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


_PAPER = "Sandler et al., MobileNetV2: Inverted Residuals and Linear Bottlenecks, CVPR 2018"


@register_model("mobilenet_v2", family="mobilenet_v2", paper=_PAPER, **torchvision_macs("MobileNet_V2_Weights", 0.301))
def mobilenet_v2(**kwargs) -> MobileNetV2:
    return MobileNetV2(1.0, **kwargs)


@register_model(
    "mobilenet_v2_050",
    family="mobilenet_v2",
    paper=_PAPER,
    published_macs=97,
    macs_source="tensorflow/models research/slim/nets/mobilenet/README.md, mobilenet_v2_0.5_224: 97M MACs",
)
def mobilenet_v2_050(**kwargs) -> MobileNetV2:
    return MobileNetV2(0.5, **kwargs)


@register_model(
    "mobilenet_v2_140",
    family="mobilenet_v2",
    paper=_PAPER,
    published_macs=582,
    macs_source="tensorflow/models research/slim/nets/mobilenet/README.md, mobilenet_v2_1.4_224: 582M MACs",
)
def mobilenet_v2_140(**kwargs) -> MobileNetV2:
    return MobileNetV2(1.4, **kwargs)
