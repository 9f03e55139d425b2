"""VGG 11/13/16/19, plain and with batch norm (Simonyan & Zisserman, "Very Deep Convolutional Networks for
Large-Scale Image Recognition", ICLR 2015; configurations A, B, D, E of Table 1).

Layout, parameter names and initialization follow torchvision's implementation (BN variants insert a
BatchNorm2d after every conv, as torchvision's `vgg*_bn`), so its state_dict files load as is.
"""

from __future__ import annotations

import torch
from torch import nn

from edgekit.zoo.layers import ClassifierMixin, init_weights, make_divisible
from edgekit.zoo.registry import register_model, torchvision_macs

# Conv widths per stage; "M" is a 2x2/2 max-pool (Table 1 of the paper).
_CFGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


class VGG(ClassifierMixin, nn.Module):
    """`small_input=True` (28-64 px images): the first max-pool becomes an Identity (same index, so keys
    keep their numbers), so the net downsamples 16x instead of 32x: five 2x pools would take a 28x28 image
    to 0x0; now the last stage runs at 3x3 and ends on 1x1 (32x32: 4x4, ends on 2x2). The adaptive pool
    averages to 1x1 instead of 7x7, so classifier.0 takes C inputs instead of C*49: 48*512*4096 =
    100,663,296 fewer parameters at width_mult=1.0 (conv parameters are unchanged).

    `width_mult` scales every conv width and the two hidden FC widths (4096), each rounded with
    make_divisible(., 8) (exact at 1.0: all reference widths are multiples of 8)."""

    classifier_path = "classifier.6"

    def __init__(
        self,
        cfg: list,
        batch_norm: bool = False,
        num_classes: int = 1000,
        in_chans: int = 3,
        small_input: bool = False,
        width_mult: float = 1.0,
        dropout: float = 0.5,
    ):
        super().__init__()
        self.num_classes = num_classes
        layers: list[nn.Module] = []
        in_ch, first_pool = in_chans, True
        for v in cfg:
            if v == "M":
                layers.append(nn.Identity() if small_input and first_pool else nn.MaxPool2d(2, 2))
                first_pool = False
                continue
            out_ch = make_divisible(v * width_mult, 8)
            layers.append(nn.Conv2d(in_ch, out_ch, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_ch))
            layers.append(nn.ReLU(inplace=True))
            in_ch = out_ch
        self.features = nn.Sequential(*layers)
        pool = 1 if small_input else 7
        self.avgpool = nn.AdaptiveAvgPool2d(pool)  # identity at 224x224
        hidden = make_divisible(4096 * width_mult, 8)
        self.num_features = hidden
        self.classifier = nn.Sequential(
            nn.Linear(in_ch * pool * pool, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
        init_weights(self)  # torchvision's initialization

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        for i in range(6):  # Linear, ReLU, Dropout, Linear, ReLU, Dropout; classifier.6 is the classifier
            x = self.classifier[i](x)
        return x if pre_logits else self.classifier[6](x)


_PAPER = "Simonyan & Zisserman, Very Deep Convolutional Networks for Large-Scale Image Recognition, ICLR 2015"


@register_model("vgg11", family="vgg", paper=_PAPER, **torchvision_macs("VGG11_Weights", 7.609))
def vgg11(**kwargs) -> VGG:
    return VGG(_CFGS["A"], batch_norm=False, **kwargs)


@register_model("vgg11_bn", family="vgg", paper=_PAPER, **torchvision_macs("VGG11_BN_Weights", 7.609))
def vgg11_bn(**kwargs) -> VGG:
    return VGG(_CFGS["A"], batch_norm=True, **kwargs)


@register_model("vgg13", family="vgg", paper=_PAPER, **torchvision_macs("VGG13_Weights", 11.308))
def vgg13(**kwargs) -> VGG:
    return VGG(_CFGS["B"], batch_norm=False, **kwargs)


@register_model("vgg13_bn", family="vgg", paper=_PAPER, **torchvision_macs("VGG13_BN_Weights", 11.308))
def vgg13_bn(**kwargs) -> VGG:
    return VGG(_CFGS["B"], batch_norm=True, **kwargs)


@register_model("vgg16", family="vgg", paper=_PAPER, aliases=("vgg",), **torchvision_macs("VGG16_Weights", 15.47))
def vgg16(**kwargs) -> VGG:
    return VGG(_CFGS["D"], batch_norm=False, **kwargs)


@register_model("vgg16_bn", family="vgg", paper=_PAPER, **torchvision_macs("VGG16_BN_Weights", 15.47))
def vgg16_bn(**kwargs) -> VGG:
    return VGG(_CFGS["D"], batch_norm=True, **kwargs)


@register_model("vgg19", family="vgg", paper=_PAPER, **torchvision_macs("VGG19_Weights", 19.632))
def vgg19(**kwargs) -> VGG:
    return VGG(_CFGS["E"], batch_norm=False, **kwargs)


@register_model("vgg19_bn", family="vgg", paper=_PAPER, **torchvision_macs("VGG19_BN_Weights", 19.632))
def vgg19_bn(**kwargs) -> VGG:
    return VGG(_CFGS["E"], batch_norm=True, **kwargs)
