"""MobileNetV1 (Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
Applications", arXiv 2017).

The body is the paper's Table 1: a 3x3 stride-2 stem and 13 depthwise separable blocks (3x3 depthwise
conv + BN + ReLU, then 1x1 pointwise conv + BN + ReLU), global average pooling and one classifier.
Convolutions have no bias. The parameter count matches the Keras Applications `MobileNet` (alpha=1.0):
4,231,976 trainable, which is PyTorch's nn.Parameter count here (BN affine weights included; the
21,888 BN running statistics Keras also lists are buffers). Keras's dropout (1e-3) before the classifier
is kept; its 1x1-conv classifier is an nn.Linear here (same parameters). torchvision has no MobileNetV1,
so module names are this file's own.
"""

from __future__ import annotations

import torch
from torch import nn

from edgekit.zoo.layers import ClassifierMixin, ConvBnAct, DropoutLinearHead, init_weights, make_divisible
from edgekit.zoo.registry import register_model

# (out_channels, stride) of the 13 depthwise separable blocks, Table 1 of the paper.
_BLOCKS = [
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
]


class DepthwiseSeparable(nn.Module):
    """3x3 depthwise conv (one filter per channel, carries the stride) then a 1x1 pointwise conv."""

    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.dw = ConvBnAct(in_ch, in_ch, 3, stride, groups=in_ch)
        self.pw = ConvBnAct(in_ch, out_ch, 1)
        self.out_channels = out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw(self.dw(x))


class MobileNetV1(DropoutLinearHead, ClassifierMixin, nn.Module):
    """`alpha` is the paper's width multiplier (the named variants); `width_mult` narrows further for
    tests. Every channel count is `make_divisible(c * alpha * width_mult, 8)`, which for alpha in
    {1, 0.75, 0.5, 0.25} gives Keras's `int(c * alpha)` exactly.

    `small_input=True` (28-64 px images) runs the stem at stride 1, so the network downsamples 16x
    instead of 32x (a 28x28 image ends on a 2x2 map). Parameter count is unchanged."""

    def __init__(
        self,
        alpha: float = 1.0,
        num_classes: int = 1000,
        in_chans: int = 3,
        small_input: bool = False,
        width_mult: float = 1.0,
        dropout: float = 0.001,
    ):
        super().__init__()
        self.num_classes = num_classes

        def width(c: int) -> int:
            return make_divisible(c * alpha * width_mult, 8)

        in_ch = width(32)
        layers: list[nn.Module] = [ConvBnAct(in_chans, in_ch, 3, 1 if small_input else 2)]
        for out, stride in _BLOCKS:
            layers.append(DepthwiseSeparable(in_ch, width(out), stride))
            in_ch = width(out)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_features = in_ch
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_ch, num_classes))
        init_weights(self)  # torchvision's initialization

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


_PAPER = "Howard et al., MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications, arXiv 2017"
_V1_TABLE6 = "Howard et al. 2017, Table 6: {}M mult-adds at 224 px"


@register_model(
    "mobilenet_v1", family="mobilenet_v1", paper=_PAPER, published_macs=569, macs_source=_V1_TABLE6.format(569)
)
def mobilenet_v1(**kwargs) -> MobileNetV1:
    return MobileNetV1(1.0, **kwargs)


@register_model(
    "mobilenet_v1_075", family="mobilenet_v1", paper=_PAPER, published_macs=325, macs_source=_V1_TABLE6.format(325)
)
def mobilenet_v1_075(**kwargs) -> MobileNetV1:
    return MobileNetV1(0.75, **kwargs)


@register_model(
    "mobilenet_v1_050", family="mobilenet_v1", paper=_PAPER, published_macs=149, macs_source=_V1_TABLE6.format(149)
)
def mobilenet_v1_050(**kwargs) -> MobileNetV1:
    return MobileNetV1(0.5, **kwargs)
