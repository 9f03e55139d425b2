"""ResNet, ResNeXt and Wide ResNet, torchvision layout (its state_dict files load as is).

- He et al., "Deep Residual Learning for Image Recognition", CVPR 2016 (resnet18-152).
- Xie et al., "Aggregated Residual Transformations for Deep Neural Networks", CVPR 2017 (resnext).
- Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016 (wide_resnet, torchvision's bottleneck variant).

Layout and parameter names follow torchvision's `resnet.py`: Bottleneck ("ResNet v1.5") puts the stride
on the 3x3 conv, shortcuts are 1x1 conv + BN projections where shape changes.
"""

from __future__ import annotations

import torch
from torch import nn

from edgekit.zoo.layers import ClassifierMixin, init_weights, make_divisible
from edgekit.zoo.registry import register_model, torchvision_macs


def _conv3x3(in_ch: int, out_ch: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, stride, 1, groups=groups, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(
        self,
        in_ch: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        width: int | None = None,
    ):
        super().__init__()
        if groups != 1 or (width is not None and width != planes):
            raise ValueError("BasicBlock supports only groups=1 and width=planes")
        self.conv1 = _conv3x3(in_ch, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (grouped for ResNeXt) -> 1x1 expand. `width` is the inner (3x3) width: `planes`
    for ResNet, `planes * base_width / 64 * groups` for ResNeXt / Wide ResNet. `stride_in_1x1=False` is
    torchvision's v1.5 placement; subclasses (Caffe-style SE-ResNet) may set it True."""

    expansion = 4
    stride_in_1x1 = False

    def __init__(
        self,
        in_ch: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        width: int | None = None,
    ):
        super().__init__()
        width = width or planes
        s1, s3 = (stride, 1) if self.stride_in_1x1 else (1, stride)
        self.conv1 = nn.Conv2d(in_ch, width, 1, s1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(width, width, s3, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu3 = nn.ReLU(inplace=True)
        self.downsample = downsample

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu3(self.residual(x) + identity)


class ResNet(ClassifierMixin, nn.Module):
    """`small_input=True` uses a 3x3 stride-1 stem without max-pool (the CIFAR stem of the paper's
    section 4.2), so 28-64 px images keep enough resolution; the stem conv then has 3x3 instead of 7x7
    weights, so the parameter count drops by 40 * 64 * in_chans.

    `width_mult` scales the stem and stage widths (64, 128, 256, 512) with make_divisible(., 8) and the
    bottleneck's inner width (planes * base_width / 64 * groups) to a multiple of max(8, groups), so
    grouped convs keep all `groups` groups. Exact at 1.0. (At 0.25, ResNeXt-50 32x4d's first stage has
    1 channel per group, i.e. becomes depthwise; 0.5 keeps real groups everywhere.)

    Subclasses swap the stem or head by overriding `_make_stem` / `_make_head` (see senet.py)."""

    classifier_path = "fc"
    layer1: nn.Sequential  # set by _make_stages
    layer2: nn.Sequential
    layer3: nn.Sequential
    layer4: nn.Sequential

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
        block_kwargs: dict | None = None,
    ):
        super().__init__()
        self.num_classes = num_classes
        self.in_ch = make_divisible(64 * width_mult, 8)
        self._make_stem(in_chans, small_input)
        self._make_stages(block, layers, width_mult, groups, base_width, **(block_kwargs or {}))
        self.num_features = self.in_ch
        self._make_head(num_classes)
        self._init_weights()

    def _make_stem(self, in_chans: int, small_input: bool) -> None:
        if small_input:
            self.conv1 = nn.Conv2d(in_chans, self.in_ch, 3, 1, 1, bias=False)
            self.maxpool: nn.Module = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_chans, self.in_ch, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.bn1 = nn.BatchNorm2d(self.in_ch)
        self.relu = nn.ReLU(inplace=True)

    def _make_head(self, num_classes: int) -> None:
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.num_features, num_classes)

    def _make_stages(self, block, layers, width_mult: float, groups: int, base_width: int, **layer_kwargs) -> None:
        """Builds layer1..layer4 (stage widths 64..512, stride 2 from layer2 on)."""
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
            width = int(planes * base_width / 64) * groups  # torchvision's inner width at width_mult=1
            width = make_divisible(width * width_mult, max(8, groups))
            planes = make_divisible(planes * width_mult, 8)
            stage = self._make_layer(block, planes, blocks, 1 if i == 0 else 2, groups, width, **layer_kwargs)
            setattr(self, f"layer{i + 1}", stage)

    def _make_layer(
        self,
        block,
        planes: int,
        blocks: int,
        stride: int = 1,
        groups: int = 1,
        width: int | None = None,
        **block_kwargs,
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.in_ch != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.in_ch, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.in_ch, planes, stride, downsample, groups, width, **block_kwargs)]
        self.in_ch = planes * block.expansion
        layers += [block(self.in_ch, planes, 1, None, groups, width, **block_kwargs) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def _init_weights(self) -> None:
        init_weights(self, linear=None)  # torchvision's ResNet leaves the fc at PyTorch's default

    def pruning_options(self) -> dict:
        # ResNeXt: prune the grouped 3x3 convs group-wise (same channel indices in every group), so each
        # keeps `groups` equal groups. torch-pruning 1.6 infers this from Conv2d.groups already; declaring
        # it keeps that explicit and stable across versions. Depthwise convs (groups == channels) are left
        # to torch-pruning's depthwise handling. Note: torch-pruning rounds each group's pruned count
        # against the layer's total width under `round_to`, so narrow groups (<= 8 channels) stay unpruned
        # and wider ones lose a multiple of 8 per group.
        grouped = {m: m.groups for m in self.modules() if isinstance(m, nn.Conv2d) and 1 < m.groups < m.out_channels}
        return {"in_channel_groups": grouped, "out_channel_groups": dict(grouped)} if grouped else {}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.fc(x)


_PAPER = "He et al., Deep Residual Learning for Image Recognition, CVPR 2016"
_RESNEXT = "Xie et al., Aggregated Residual Transformations for Deep Neural Networks, CVPR 2017"
_WIDE = "Zagoruyko & Komodakis, Wide Residual Networks, BMVC 2016"


@register_model(
    "resnet18", family="resnet", paper=_PAPER, aliases=("resnet",), **torchvision_macs("ResNet18_Weights", 1.814)
)
def resnet18(**kwargs) -> ResNet:
    return ResNet(BasicBlock, [2, 2, 2, 2], **kwargs)


@register_model("resnet34", family="resnet", paper=_PAPER, **torchvision_macs("ResNet34_Weights", 3.664))
def resnet34(**kwargs) -> ResNet:
    return ResNet(BasicBlock, [3, 4, 6, 3], **kwargs)


@register_model("resnet50", family="resnet", paper=_PAPER, **torchvision_macs("ResNet50_Weights", 4.089))
def resnet50(**kwargs) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3], **kwargs)


@register_model("resnet101", family="resnet", paper=_PAPER, **torchvision_macs("ResNet101_Weights", 7.801))
def resnet101(**kwargs) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 23, 3], **kwargs)


@register_model("resnet152", family="resnet", paper=_PAPER, **torchvision_macs("ResNet152_Weights", 11.514))
def resnet152(**kwargs) -> ResNet:
    return ResNet(Bottleneck, [3, 8, 36, 3], **kwargs)


@register_model(
    "resnext50_32x4d",
    family="resnext",
    paper=_RESNEXT,
    aliases=("resnext",),
    **torchvision_macs("ResNeXt50_32X4D_Weights", 4.23),
)
def resnext50_32x4d(**kwargs) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3], groups=32, base_width=4, **kwargs)


@register_model(
    "resnext101_32x8d", family="resnext", paper=_RESNEXT, **torchvision_macs("ResNeXt101_32X8D_Weights", 16.414)
)
def resnext101_32x8d(**kwargs) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 23, 3], groups=32, base_width=8, **kwargs)


@register_model(
    "wide_resnet50_2",
    family="wide_resnet",
    paper=_WIDE,
    aliases=("wide_resnet",),
    **torchvision_macs("Wide_ResNet50_2_Weights", 11.398),
)
def wide_resnet50_2(**kwargs) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3], base_width=128, **kwargs)


@register_model(
    "wide_resnet101_2", family="wide_resnet", paper=_WIDE, **torchvision_macs("Wide_ResNet101_2_Weights", 22.753)
)
def wide_resnet101_2(**kwargs) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 23, 3], base_width=128, **kwargs)
