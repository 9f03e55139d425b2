"""GhostNet (Han et al., "GhostNet: More Features from Cheap Operations", CVPR 2020).

Layout and parameter names follow the official huawei-noah implementation (ghostnet_pytorch/ghostnet.py,
also timm's `ghostnet_100`): conv_stem/bn1, blocks.S.B with ghost1/conv_dw/bn_dw/se/ghost2/shortcut,
then global_pool, conv_head (1x1 conv with bias after pooling), classifier. Parameter count at width 1.0:
5,182,508, what the official code builds (timm's ghostnet_100 builds the same layers; the paper rounds
to 5.2M).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from edgekit.zoo.layers import ClassifierMixin, make_divisible
from edgekit.zoo.registry import register_model

# Stages of (kernel, expanded, out, se_ratio, stride) bottlenecks, Table 1 of the paper; the official
# code groups them into these nine stages (the grouping fixes the blocks.S.B parameter names).
_STAGES: list[list[tuple[int, int, int, float, int]]] = [
    [(3, 16, 16, 0, 1)],
    [(3, 48, 24, 0, 2)],
    [(3, 72, 24, 0, 1)],
    [(5, 72, 40, 0.25, 2)],
    [(5, 120, 40, 0.25, 1)],
    [(3, 240, 80, 0, 2)],
    [(3, 200, 80, 0, 1), (3, 184, 80, 0, 1), (3, 184, 80, 0, 1), (3, 480, 112, 0.25, 1), (3, 672, 112, 0.25, 1)],
    [(5, 672, 160, 0.25, 2)],
    [(5, 960, 160, 0, 1), (5, 960, 160, 0.25, 1), (5, 960, 160, 0, 1), (5, 960, 160, 0.25, 1)],
]


class SqueezeExcite(nn.Module):
    """Official GhostNet SE: reduce to make_divisible(ch * ratio, 4) with bias, ReLU, expand, and the
    hard-sigmoid gate relu6(x + 3) / 6 (nn.Hardsigmoid computes exactly that)."""

    def __init__(self, channels: int, se_ratio: float = 0.25):
        super().__init__()
        reduced = make_divisible(channels * se_ratio, 4)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_reduce = nn.Conv2d(channels, reduced, 1)
        self.act1 = nn.ReLU(inplace=True)
        self.conv_expand = nn.Conv2d(reduced, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.conv_expand(self.act1(self.conv_reduce(self.avg_pool(x)))))


class GhostModule(nn.Module):
    """A 1x1 primary conv makes ceil(oup / 2) "intrinsic" maps; a cheap 3x3 depthwise conv makes one
    "ghost" map from each; the two are concatenated (ratio 2)."""

    def __init__(self, inp: int, oup: int, relu: bool = True):
        super().__init__()
        init_ch = math.ceil(oup / 2)
        # The official code always slices the concat to `oup` channels; that only removes a channel when
        # oup is odd, which the divisor-4 rounding never produces. Slicing only then keeps a no-op Slice
        # (whose bound would go stale once pruning narrows the module) out of the graph and the ONNX file.
        self.trim = oup if 2 * init_ch != oup else None
        act = (lambda: nn.ReLU(inplace=True)) if relu else nn.Identity
        self.primary_conv = nn.Sequential(nn.Conv2d(inp, init_ch, 1, bias=False), nn.BatchNorm2d(init_ch), act())
        self.cheap_operation = nn.Sequential(
            nn.Conv2d(init_ch, init_ch, 3, 1, 1, groups=init_ch, bias=False), nn.BatchNorm2d(init_ch), act()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.primary_conv(x)
        out = torch.cat([x1, self.cheap_operation(x1)], dim=1)
        return out if self.trim is None else out[:, : self.trim]


class GhostBottleneck(nn.Module):
    """Ghost module (expand, ReLU), depthwise conv + BN when strided, optional SE, ghost module (project,
    linear); the shortcut is identity or depthwise conv + BN + 1x1 conv + BN when the shape changes."""

    def __init__(self, in_ch: int, mid_ch: int, out_ch: int, kernel: int, stride: int, se_ratio: float):
        super().__init__()
        self.ghost1 = GhostModule(in_ch, mid_ch, relu=True)
        if stride > 1:
            self.conv_dw: nn.Module = nn.Conv2d(
                mid_ch, mid_ch, kernel, stride, (kernel - 1) // 2, groups=mid_ch, bias=False
            )
            self.bn_dw: nn.Module = nn.BatchNorm2d(mid_ch)
        else:
            self.conv_dw, self.bn_dw = nn.Identity(), nn.Identity()
        self.se = SqueezeExcite(mid_ch, se_ratio) if se_ratio > 0 else nn.Identity()
        self.ghost2 = GhostModule(mid_ch, out_ch, relu=False)
        if in_ch == out_ch and stride == 1:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_ch, in_ch, kernel, stride, (kernel - 1) // 2, groups=in_ch, bias=False),
                nn.BatchNorm2d(in_ch),
                nn.Conv2d(in_ch, out_ch, 1, bias=False),
                nn.BatchNorm2d(out_ch),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.se(self.bn_dw(self.conv_dw(self.ghost1(x))))
        return self.ghost2(out) + self.shortcut(x)


class ConvBnAct(nn.Module):
    """The final 1x1 conv stage, with the official module names (conv, bn1, act1)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.act1 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act1(self.bn1(self.conv(x)))


class GhostNet(ClassifierMixin, nn.Module):
    """`width_mult` scales every channel with the official rule `make_divisible(c * width, 4)` (so
    timm's ghostnet_050/130 widths come out the same); the 1280-wide conv_head, fixed in the official
    code, is `make_divisible(1280 * width_mult, 8)` here so narrow copies shrink it too (1280 at 1.0).

    `small_input=True` (28-64 px images) runs the stem at stride 1, so the network downsamples 16x
    instead of 32x (a 28x28 image ends on a 2x2 map). Parameter count is unchanged."""

    classifier_path = "classifier"

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        small_input: bool = False,
        width_mult: float = 1.0,
        dropout: float = 0.2,
    ):
        super().__init__()
        self.num_classes = num_classes
        in_ch = make_divisible(16 * width_mult, 4)
        self.conv_stem = nn.Conv2d(in_chans, in_ch, 3, 1 if small_input else 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.act1 = nn.ReLU(inplace=True)
        stages: list[nn.Module] = []
        for stage in _STAGES:
            blocks = []
            for kernel, expanded, out, se_ratio, stride in stage:
                mid_ch, out_ch = make_divisible(expanded * width_mult, 4), make_divisible(out * width_mult, 4)
                blocks.append(GhostBottleneck(in_ch, mid_ch, out_ch, kernel, stride, se_ratio))
                in_ch = out_ch
            stages.append(nn.Sequential(*blocks))
        final = make_divisible(960 * width_mult, 4)
        stages.append(nn.Sequential(ConvBnAct(in_ch, final)))
        self.blocks = nn.Sequential(*stages)
        self.num_features = make_divisible(1280 * width_mult, 8)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_head = nn.Conv2d(final, self.num_features, 1, bias=True)
        self.act2 = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.num_features, num_classes)

    def pruning_options(self) -> dict:
        # A ghost module's output is [intrinsic | ghost] and the cheap depthwise op ties ghost channel j
        # to intrinsic channel j, so channels j and j + h are always removed together. torch-pruning gets
        # the shapes right, but a group rooted at a layer that sees the whole concat (shortcut convs,
        # conv_dw, SE expand) counts ratio x 2h channels and then also removes each one's partner: about
        # twice the asked ratio. Declaring those layers' outputs as 2 channel groups makes it rank pairs.
        groups: dict[nn.Module, int] = {}
        for block in self.modules():
            if isinstance(block, GhostBottleneck):
                whole_concat = [block.conv_dw, getattr(block.se, "conv_expand", None), *block.shortcut.modules()]
                groups.update({conv: 2 for conv in whole_concat if isinstance(conv, nn.Conv2d)})
        return {"out_channel_groups": groups}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.act1(self.bn1(self.conv_stem(x))))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        # The head's hidden layer is a 1x1 conv applied after pooling (as in the official code).
        x = self.dropout(torch.flatten(self.act2(self.conv_head(self.global_pool(x))), 1))
        return x if pre_logits else self.classifier(x)


_PAPER = "Han et al., GhostNet: More Features from Cheap Operations, CVPR 2020"


@register_model(
    "ghostnet_100",
    family="ghostnet",
    paper=_PAPER,
    aliases=("ghostnet",),
    published_macs=141,
    macs_source="Han et al. 2020, Table 7: GhostNet 1.0x 141M FLOPs (multiply-adds)",
)
def ghostnet_100(**kwargs) -> GhostNet:
    return GhostNet(**kwargs)
