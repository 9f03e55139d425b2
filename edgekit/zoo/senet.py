"""SE-ResNet and SE-ResNeXt (Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018 / TPAMI 2020).

Layout and parameter names follow Cadene's pretrained-models.pytorch `senet.py` (`se_resnet50`,
`se_resnext50_32x4d`), so its state_dict files load as is: stem `layer0` (7x7 conv, BN, ReLU, 3x3/2
max-pool with ceil_mode), stages `layer1..4`, SE gate `se_module` (1x1 convs with bias, reduction 16)
after each bottleneck's last BN and before the residual add, classifier `last_linear`.
Reference counts (1000 classes): se_resnet50 28,088,024, se_resnext50_32x4d 27,559,896.

The blocks reuse resnet.py's Bottleneck. Where Cadene differs from torchvision we follow Cadene:
SE-ResNet puts the stride on the first 1x1 conv (Caffe style), SE-ResNeXt on the 3x3 conv; the
shortcut is a 1x1 strided conv + BN in both (as torchvision). Cadene pools with AvgPool2d(7); we use
the equivalent adaptive pool so small inputs work.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from edgekit.zoo.layers import make_divisible
from edgekit.zoo.registry import register_model
from edgekit.zoo.resnet import Bottleneck, ResNet


class SEModule(nn.Module):
    """Squeeze-and-Excitation gate with Cadene's parameter names. The squeeze width is
    make_divisible(channels / reduction, 8): exactly channels // 16 for every stage at width_mult=1."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        squeeze = make_divisible(channels / reduction, 8)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.sigmoid(self.fc2(self.relu(self.fc1(self.avg_pool(x)))))


class SEBottleneck(Bottleneck):
    """Bottleneck with an SE gate on the residual branch; stride on the 3x3 conv (Cadene's
    SEResNeXtBottleneck)."""

    def __init__(
        self,
        in_ch: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        width: int | None = None,
        reduction: int = 16,
    ):
        super().__init__(in_ch, planes, stride, downsample, groups, width)
        self.se_module = SEModule(planes * self.expansion, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu3(self.se_module(self.residual(x)) + identity)


class SEResNetBottleneck(SEBottleneck):
    """Cadene's SEResNetBottleneck follows the Caffe model: the stride sits on conv1 (1x1), not conv2."""

    stride_in_1x1 = True


class SENet(ResNet):
    """SE-ResNet / SE-ResNeXt in Cadene's layout (stem in `layer0`, classifier `last_linear`).

    `small_input=True`: the stem conv is 3x3 stride 1 and the max-pool is dropped, so 28-64 px inputs
    keep their resolution (the stem then has 3x3 instead of 7x7 weights: 40 * 64 * in_chans fewer
    parameters). `width_mult` scales widths exactly as ResNet does (stage widths make_divisible(., 8),
    grouped inner widths to multiples of the group count); the SE squeeze width follows the stage width."""

    classifier_path = "last_linear"

    def __init__(
        self,
        block,
        layers,
        num_classes: int = 1000,
        in_chans: int = 3,
        small_input: bool = False,
        width_mult: float = 1.0,
        groups: int = 1,
        base_width: int = 64,
        reduction: int = 16,
    ):
        super().__init__(
            block,
            layers,
            num_classes,
            in_chans,
            small_input,
            width_mult,
            groups,
            base_width,
            block_kwargs={"reduction": reduction},
        )

    def _make_stem(self, in_chans: int, small_input: bool) -> None:
        conv = (
            nn.Conv2d(in_chans, self.in_ch, 3, 1, 1, bias=False)
            if small_input
            else nn.Conv2d(in_chans, self.in_ch, 7, 2, 3, bias=False)
        )
        pool = nn.Identity() if small_input else nn.MaxPool2d(3, 2, ceil_mode=True)  # ceil_mode: Caffe weights
        self.layer0 = nn.Sequential(
            OrderedDict(conv1=conv, bn1=nn.BatchNorm2d(self.in_ch), relu1=nn.ReLU(inplace=True), pool=pool)
        )

    def _make_head(self, num_classes: int) -> None:
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.last_linear = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer4(self.layer3(self.layer2(self.layer1(self.layer0(x)))))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avg_pool(x), 1)
        return x if pre_logits else self.last_linear(x)


_PAPER = "Hu et al., Squeeze-and-Excitation Networks, CVPR 2018"


@register_model("se_resnet50", family="senet", paper=_PAPER, aliases=("se_resnet",))
def se_resnet50(**kwargs) -> SENet:
    return SENet(SEResNetBottleneck, [3, 4, 6, 3], **kwargs)


@register_model("se_resnext50_32x4d", family="senet", paper=_PAPER, aliases=("se_resnext",))
def se_resnext50_32x4d(**kwargs) -> SENet:
    return SENet(SEBottleneck, [3, 4, 6, 3], groups=32, base_width=4, **kwargs)
