"""DenseNet-BC (Huang et al., "Densely Connected Convolutional Networks", CVPR 2017).

Layout and parameter names follow torchvision (features.denseblockN.denselayerM.norm1/conv1/norm2/conv2,
features.transitionN, features.norm5, classifier). torchvision's published .pth files still use the old
key names (`denselayer1.norm.1.weight`); torchvision renames them when loading, and so must a caller here:
`{densenet_tv_key_map(k): v for k, v in state.items()}` before `load_state_dict`.
"""

from __future__ import annotations

import re
from collections import OrderedDict

import torch
from torch import nn

from edgekit.zoo.layers import ClassifierMixin, make_divisible
from edgekit.zoo.registry import register_model, torchvision_macs

_OLD_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12]\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$"
)


def densenet_tv_key_map(key: str) -> str:
    """Map a key of torchvision's published DenseNet files to the module names used here (and by
    torchvision's own classes): `...denselayer1.norm.1.weight` -> `...denselayer1.norm1.weight`. Other keys
    pass through unchanged. torchvision's `_load_state_dict` regex, plus `num_batches_tracked` (absent from the
    published files, present in old-style files saved by newer PyTorch)."""
    match = _OLD_KEY.match(key)
    return match.group(1) + match.group(2) if match else key


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 conv (bottleneck, bn_size * growth) then BN-ReLU-3x3 conv (growth new channels)."""

    def __init__(self, in_ch: int, growth_rate: int, bn_size: int, drop_rate: float):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_ch)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_ch, bn_size * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)
        self.dropout = nn.Dropout(drop_rate) if drop_rate > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))
        return out if self.dropout is None else self.dropout(out)


class DenseBlock(nn.ModuleDict):
    """Each layer reads the concatenation of the block input and every earlier layer's output."""

    def __init__(self, num_layers: int, in_ch: int, growth_rate: int, bn_size: int, drop_rate: float):
        super().__init__()
        for i in range(num_layers):
            self.add_module(f"denselayer{i + 1}", DenseLayer(in_ch + i * growth_rate, growth_rate, bn_size, drop_rate))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A running two-input concat gives the same tensors as torchvision's cat of the whole feature list
        # at every layer, but torch-pruning's concat index mapping (quadratic in a cat's inputs) stays cheap.
        for layer in self.values():
            x = torch.cat([x, layer(x)], 1)
        return x


class Transition(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(in_ch)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_ch, out_ch, 1, bias=False)
        self.pool = nn.AvgPool2d(2, 2)


class DenseNet(ClassifierMixin, nn.Module):
    """`small_input=True` (28-64 px images) runs the 7x7 stem conv at stride 1 without the stem max-pool,
    so the network downsamples 8x instead of 32x (32 px ends on 4x4, 28 px on 3x3). Parameter count
    unchanged. `width_mult` scales the growth rate and the stem width, each rounded to a multiple of 8 (the
    bottleneck is bn_size x growth; transitions halve as usual)."""

    classifier_path = "classifier"

    def __init__(
        self,
        growth_rate: int = 32,
        block_config=(6, 12, 24, 16),
        num_init_features: int = 64,
        bn_size: int = 4,
        drop_rate: float = 0.0,
        num_classes: int = 1000,
        in_chans: int = 3,
        small_input: bool = False,
        width_mult: float = 1.0,
    ):
        super().__init__()
        self.num_classes = num_classes
        growth_rate = make_divisible(growth_rate * width_mult, 8)
        num_ch = make_divisible(num_init_features * width_mult, 8)
        self.features = nn.Sequential(
            OrderedDict(
                [
                    ("conv0", nn.Conv2d(in_chans, num_ch, 7, 1 if small_input else 2, 3, bias=False)),
                    ("norm0", nn.BatchNorm2d(num_ch)),
                    ("relu0", nn.ReLU(inplace=True)),
                    ("pool0", nn.Identity() if small_input else nn.MaxPool2d(3, 2, 1)),
                ]
            )
        )
        for i, num_layers in enumerate(block_config):
            block = DenseBlock(num_layers, num_ch, growth_rate, bn_size, drop_rate)
            self.features.add_module(f"denseblock{i + 1}", block)
            num_ch += num_layers * growth_rate
            if i != len(block_config) - 1:
                self.features.add_module(f"transition{i + 1}", Transition(num_ch, num_ch // 2))
                num_ch //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(num_ch))
        self.relu = nn.ReLU(inplace=True)  # torchvision applies F.relu after norm5
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_features = num_ch
        self.classifier = nn.Linear(num_ch, num_classes)
        for m in self.modules():  # torchvision's init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.features(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.classifier(x)


_PAPER = "Huang et al., Densely Connected Convolutional Networks, CVPR 2017"


@register_model(
    "densenet121",
    family="densenet",
    paper=_PAPER,
    aliases=("densenet",),
    **torchvision_macs("DenseNet121_Weights", 2.834),
)
def densenet121(**kwargs) -> DenseNet:
    return DenseNet(32, (6, 12, 24, 16), 64, **kwargs)


@register_model("densenet169", family="densenet", paper=_PAPER, **torchvision_macs("DenseNet169_Weights", 3.36))
def densenet169(**kwargs) -> DenseNet:
    return DenseNet(32, (6, 12, 32, 32), 64, **kwargs)


@register_model("densenet201", family="densenet", paper=_PAPER, **torchvision_macs("DenseNet201_Weights", 4.291))
def densenet201(**kwargs) -> DenseNet:
    return DenseNet(32, (6, 12, 48, 32), 64, **kwargs)


@register_model("densenet161", family="densenet", paper=_PAPER, **torchvision_macs("DenseNet161_Weights", 7.728))
def densenet161(**kwargs) -> DenseNet:
    return DenseNet(48, (6, 12, 36, 24), 96, **kwargs)
