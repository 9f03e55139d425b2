"""SqueezeNet 1.0 and 1.1 (Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters
and <0.5MB model size", arXiv 2016 / ICLR 2017 submission; 1.1 from the authors' SqueezeNet v1.1 release).

Layout, parameter names and initialization follow torchvision's implementation, so its state_dict files
load as is. The classifier is a 1x1 convolution (then ReLU and global average pool), not a Linear.
"""

from __future__ import annotations

import torch
from torch import nn

from edgekit.zoo.layers import ClassifierMixin, make_divisible
from edgekit.zoo.registry import register_model, torchvision_macs

# Stem (out_channels, kernel), then Fire modules (squeeze, expand1x1, expand3x3) and "M" (3x3/2 max-pool).
_V1_0 = (
    (96, 7),
    [
        "M",
        (16, 64, 64),
        (16, 64, 64),
        (32, 128, 128),
        "M",
        (32, 128, 128),
        (48, 192, 192),
        (48, 192, 192),
        (64, 256, 256),
        "M",
        (64, 256, 256),
    ],
)
_V1_1 = (
    (64, 3),
    [
        "M",
        (16, 64, 64),
        (16, 64, 64),
        "M",
        (32, 128, 128),
        (32, 128, 128),
        "M",
        (48, 192, 192),
        (48, 192, 192),
        (64, 256, 256),
        (64, 256, 256),
    ],
)


class Fire(nn.Module):
    """Squeeze 1x1, then parallel 1x1 and 3x3 expands concatenated on channels."""

    def __init__(self, in_ch: int, squeeze: int, expand1x1: int, expand3x3: int):
        super().__init__()
        self.squeeze = nn.Conv2d(in_ch, squeeze, 1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, 1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, 3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)
        self.out_channels = expand1x1 + expand3x3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        expand1x1 = self.expand1x1_activation(self.expand1x1(x))
        return torch.cat([expand1x1, self.expand3x3_activation(self.expand3x3(x))], 1)


class ConvClassifier(nn.Conv2d):
    """The 1x1 conv classifier, exposing `in_features` / `out_features` like nn.Linear so the zoo contract
    (and code reading the classifier's sizes) works unchanged. A plain Conv2d to torch-pruning and ONNX."""

    def __init__(self, in_ch: int, num_classes: int):
        super().__init__(in_ch, num_classes, 1)
        nn.init.normal_(self.weight, 0, 0.01)  # torchvision's final_conv init
        assert self.bias is not None  # Conv2d(..., bias=True)
        nn.init.zeros_(self.bias)

    @property
    def in_features(self) -> int:
        return self.in_channels

    @property
    def out_features(self) -> int:
        return self.out_channels


class SqueezeNet(ClassifierMixin, nn.Module):
    """`small_input=True` (28-64 px images): the stem conv runs at stride 1 with "same" padding (kernel
    unchanged) instead of stride 2 unpadded, so the net downsamples 8x instead of 16x: a 32x32 image ends
    on a 4x4 map, 28x28 on 3x3. Parameter count is unchanged.

    `width_mult` scales the stem and every squeeze/expand width, each rounded with make_divisible(., 8)
    (exact at 1.0: all reference widths are multiples of 8)."""

    classifier_path = "classifier.1"

    def __init__(
        self,
        config,
        num_classes: int = 1000,
        in_chans: int = 3,
        small_input: bool = False,
        width_mult: float = 1.0,
        dropout: float = 0.5,
    ):
        super().__init__()
        self.num_classes = num_classes
        (stem, kernel), blocks = config
        width = lambda c: make_divisible(c * width_mult, 8)  # noqa: E731
        stride, padding = (1, kernel // 2) if small_input else (2, 0)
        layers: list[nn.Module] = [nn.Conv2d(in_chans, width(stem), kernel, stride, padding), nn.ReLU(inplace=True)]
        in_ch = width(stem)
        for row in blocks:
            if row == "M":
                layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
            else:
                fire = Fire(in_ch, *(width(c) for c in row))
                layers.append(fire)
                in_ch = fire.out_channels
        self.features = nn.Sequential(*layers)
        for m in self.features.modules():  # torchvision's init (the classifier sets its own)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        self.num_features = in_ch
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), ConvClassifier(in_ch, num_classes), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1)
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.classifier[0](x)  # dropout; the classifier's input stays a 4-D map
        if pre_logits:
            return x
        x = self.classifier[3](self.classifier[2](self.classifier[1](x)))  # 1x1 conv, ReLU, global pool
        return torch.flatten(x, 1)

    def reset_classifier(self, num_classes: int) -> None:
        # the current classifier's width, not num_features: pruning may have narrowed it
        self.classifier[1] = ConvClassifier(self.get_classifier().in_features, num_classes)
        self.num_classes = num_classes


_PAPER = (
    "Iandola et al., SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model size, arXiv 2016"
)


@register_model("squeezenet1_0", family="squeezenet", paper=_PAPER, **torchvision_macs("SqueezeNet1_0_Weights", 0.819))
def squeezenet1_0(**kwargs) -> SqueezeNet:
    return SqueezeNet(_V1_0, **kwargs)


@register_model(
    "squeezenet1_1",
    family="squeezenet",
    paper=_PAPER,
    aliases=("squeezenet",),
    **torchvision_macs("SqueezeNet1_1_Weights", 0.349),
)
def squeezenet1_1(**kwargs) -> SqueezeNet:
    return SqueezeNet(_V1_1, **kwargs)
