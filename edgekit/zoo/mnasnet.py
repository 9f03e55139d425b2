"""MnasNet-B1 (Tan et al., "MnasNet: Platform-Aware Neural Architecture Search for Mobile", CVPR 2019).

Layout and parameter names follow torchvision's implementation (version 2: the stem scales with the
depth multiplier; layers.N, classifier Dropout + Linear), so its state_dict files load as is.
"""

from __future__ import annotations

import torch
from torch import nn

from edgekit.zoo.layers import ClassifierMixin, DropoutLinearHead, init_weights, make_divisible
from edgekit.zoo.registry import register_model, torchvision_macs

# The paper trains with TensorFlow's BN momentum 0.9997; PyTorch's momentum is 1 minus that.
_BN_MOMENTUM = 1 - 0.9997
# Stage depths before scaling: stem, separable conv, then the six inverted-residual stacks.
_DEPTHS = [32, 16, 24, 40, 80, 96, 192, 320]
# (kernel, first stride, expansion, repeats) of the six stacks; in/out depths are _DEPTHS[i + 1], [i + 2].
_STACKS = [(3, 2, 3, 3), (5, 2, 3, 3), (5, 2, 6, 3), (3, 1, 6, 2), (5, 2, 6, 4), (3, 1, 6, 1)]


def _bn(ch: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(ch, momentum=_BN_MOMENTUM)


class _InvertedResidual(nn.Module):
    """1x1 expand + BN + ReLU, kxk depthwise + BN + ReLU, linear 1x1 projection + BN; flat `layers`."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expansion: int):
        super().__init__()
        mid = in_ch * expansion
        self.apply_residual = in_ch == out_ch and stride == 1
        self.layers = nn.Sequential(
            nn.Conv2d(in_ch, mid, 1, bias=False),
            _bn(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False),
            _bn(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_ch, 1, bias=False),
            _bn(out_ch),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x) + x if self.apply_residual else self.layers(x)


def _stack(in_ch: int, out_ch: int, kernel: int, stride: int, expansion: int, repeats: int) -> nn.Sequential:
    blocks = [_InvertedResidual(in_ch, out_ch, kernel, stride, expansion)]  # first block changes shape: no skip
    blocks += [_InvertedResidual(out_ch, out_ch, kernel, 1, expansion) for _ in range(1, repeats)]
    return nn.Sequential(*blocks)


class MNASNet(DropoutLinearHead, ClassifierMixin, nn.Module):
    """`alpha` is the depth multiplier of the named variants; `width_mult` narrows further for tests.
    Depths are `make_divisible(d * alpha * width_mult, 8)` (torchvision's `_round_to_multiple_of` with
    its 0.9 round-up bias is the same rule); the final 1x1 conv is 1280 for every alpha, as in
    torchvision, and `make_divisible(1280 * width_mult, 8)` in narrowed copies.

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
        d = [make_divisible(depth * alpha * width_mult, 8) for depth in _DEPTHS]
        last = make_divisible(1280 * width_mult, 8)
        layers: list[nn.Module] = [
            nn.Conv2d(in_chans, d[0], 3, 1 if small_input else 2, 1, bias=False),
            _bn(d[0]),
            nn.ReLU(inplace=True),
            # depthwise separable conv, no skip
            nn.Conv2d(d[0], d[0], 3, 1, 1, groups=d[0], bias=False),
            _bn(d[0]),
            nn.ReLU(inplace=True),
            nn.Conv2d(d[0], d[1], 1, bias=False),
            _bn(d[1]),
        ]
        for i, (kernel, stride, expansion, repeats) in enumerate(_STACKS):
            layers.append(_stack(d[i + 1], d[i + 2], kernel, stride, expansion, repeats))
        layers += [nn.Conv2d(d[-1], last, 1, bias=False), _bn(last), nn.ReLU(inplace=True)]
        self.layers = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_features = last
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))
        init_weights(
            self, linear=lambda m: nn.init.kaiming_uniform_(m.weight, mode="fan_out", nonlinearity="sigmoid")
        )  # torchvision's initialization

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


_PAPER = "Tan et al., MnasNet: Platform-Aware Neural Architecture Search for Mobile, CVPR 2019"


@register_model("mnasnet0_5", family="mnasnet", paper=_PAPER, **torchvision_macs("MNASNet0_5_Weights", 0.104))
def mnasnet0_5(**kwargs) -> MNASNet:
    return MNASNet(0.5, **kwargs)


@register_model("mnasnet0_75", family="mnasnet", paper=_PAPER, **torchvision_macs("MNASNet0_75_Weights", 0.215))
def mnasnet0_75(**kwargs) -> MNASNet:
    return MNASNet(0.75, **kwargs)


@register_model(
    "mnasnet1_0", family="mnasnet", paper=_PAPER, aliases=("mnasnet",), **torchvision_macs("MNASNet1_0_Weights", 0.314)
)
def mnasnet1_0(**kwargs) -> MNASNet:
    return MNASNet(1.0, **kwargs)


@register_model("mnasnet1_3", family="mnasnet", paper=_PAPER, **torchvision_macs("MNASNet1_3_Weights", 0.526))
def mnasnet1_3(**kwargs) -> MNASNet:
    return MNASNet(1.3, **kwargs)
