"""Xception (Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions", CVPR 2017).

Entry flow (stem + 3 strided blocks), middle flow (8 residual blocks of 3 separable convs), exit flow
(strided block + two separable convs), as in Keras Applications' Xception. Layout and parameter names follow
timm's `legacy_xception` (the Cadene/tstandley port of the Keras weights), so its state_dict files load.
Parameter count: 22,855,952 nn.Parameters, which is Keras' trainable count (Keras' 22,910,480 total adds
the 54,528 BatchNorm moving means/variances, buffers in PyTorch) and timm's legacy_xception count.
"""

from __future__ import annotations

import torch
from torch import nn

from edgekit.zoo.layers import ClassifierMixin, make_divisible
from edgekit.zoo.registry import register_model


class SeparableConv2d(nn.Module):
    """Depthwise 3x3 (`conv1`) then pointwise 1x1, no bias and no norm/activation in between (the paper
    found an intermediate activation hurts)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, padding: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, in_ch, kernel, stride, padding, groups=in_ch, bias=False)
        self.pointwise = nn.Conv2d(in_ch, out_ch, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.conv1(x))


class Block(nn.Module):
    """`reps` x (ReLU, SeparableConv, BN), then a 3x3/2 max-pool when strided, plus a shortcut (1x1 conv +
    BN when shape changes, identity otherwise). `grow_first=False` widens in the last separable conv (exit
    flow). The first block of the entry flow starts without ReLU (the stem ends with one)."""

    def __init__(
        self, in_ch: int, out_ch: int, reps: int, stride: int = 1, start_with_relu: bool = True, grow_first: bool = True
    ):
        super().__init__()
        if out_ch != in_ch or stride != 1:
            self.skip: nn.Conv2d | None = nn.Conv2d(in_ch, out_ch, 1, stride, bias=False)
            self.skipbn = nn.BatchNorm2d(out_ch)
        else:
            self.skip = None
        rep: list[nn.Module] = []
        for i in range(reps):
            if grow_first:
                inc, outc = (in_ch if i == 0 else out_ch), out_ch
            else:
                inc, outc = in_ch, (in_ch if i < reps - 1 else out_ch)
            # The first ReLU must not work in place: the shortcut still reads the block input.
            rep += [nn.ReLU(inplace=i > 0), SeparableConv2d(inc, outc), nn.BatchNorm2d(outc)]
        if not start_with_relu:
            rep = rep[1:]
        if stride != 1:
            rep.append(nn.MaxPool2d(3, stride, 1))
        self.rep = nn.Sequential(*rep)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.skip is None else self.skipbn(self.skip(x))
        return self.rep(x) + shortcut


class Xception(ClassifierMixin, nn.Module):
    """`small_input=True` (28-64 px images) runs the first stem conv at stride 1, so the network
    downsamples 16x instead of 32x (32 px ends on 2x2, 28 px on 2x2). Parameter count unchanged.
    `width_mult` scales every channel count, rounded to a multiple of 8."""

    classifier_path = "fc"

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        small_input: bool = False,
        width_mult: float = 1.0,
        middle_blocks: int = 8,
    ):
        super().__init__()
        self.num_classes = num_classes

        def ch(c: int) -> int:
            return make_divisible(c * width_mult, 8)

        # Stem: two unpadded 3x3 convs, as in Keras ('valid'): 299 -> 149 -> 147.
        self.conv1 = nn.Conv2d(in_chans, ch(32), 3, 1 if small_input else 2, 0, bias=False)
        self.bn1 = nn.BatchNorm2d(ch(32))
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(ch(32), ch(64), 3, bias=False)
        self.bn2 = nn.BatchNorm2d(ch(64))
        self.act2 = nn.ReLU(inplace=True)
        # Entry flow (block1-3), middle flow (block4-11), exit flow (block12); timm's numbering.
        self.block1 = Block(ch(64), ch(128), 2, 2, start_with_relu=False)
        self.block2 = Block(ch(128), ch(256), 2, 2)
        self.block3 = Block(ch(256), ch(728), 2, 2)
        self.num_blocks = 3 + middle_blocks + 1
        for i in range(4, 4 + middle_blocks):
            setattr(self, f"block{i}", Block(ch(728), ch(728), 3, 1))
        setattr(self, f"block{self.num_blocks}", Block(ch(728), ch(1024), 2, 2, grow_first=False))
        self.conv3 = SeparableConv2d(ch(1024), ch(1536))
        self.bn3 = nn.BatchNorm2d(ch(1536))
        self.act3 = nn.ReLU(inplace=True)
        self.conv4 = SeparableConv2d(ch(1536), ch(2048))
        self.bn4 = nn.BatchNorm2d(ch(2048))
        self.act4 = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_features = ch(2048)
        self.fc = nn.Linear(self.num_features, num_classes)
        for m in self.modules():  # timm's init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.bn2(self.conv2(x)))
        for i in range(1, self.num_blocks + 1):
            x = getattr(self, f"block{i}")(x)
        x = self.act3(self.bn3(self.conv3(x)))
        return self.act4(self.bn4(self.conv4(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.fc(x)


_PAPER = "Chollet, Xception: Deep Learning with Depthwise Separable Convolutions, CVPR 2017"


@register_model("xception", family="xception", paper=_PAPER, input_size=(3, 299, 299))
def xception(**kwargs) -> Xception:
    return Xception(**kwargs)
