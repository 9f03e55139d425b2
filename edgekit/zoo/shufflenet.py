"""ShuffleNet V1 and V2.

V1: Zhang, Zhou, Lin, Sun, "ShuffleNet: An Extremely Efficient Convolutional Neural Network for Mobile
Devices", CVPR 2018 (Table 1, g=3). Layout and parameter names follow the official PyTorch
ShuffleNetV1 of megvii-model/ShuffleNet-Series (its channel-shuffle order and bias-free classifier).
V2: Ma, Zhang, Zheng, Sun, "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design",
ECCV 2018. Layout and parameter names follow torchvision's implementation, so its state_dicts load as is.

Pruning: torch-pruning cannot map channel indices through a channel shuffle (its reshape mapping
crashes on view/transpose/view, and it counts a transpose as an identity). V2 keeps the shuffled channels
fixed and prunes conv1, conv5 and each branch's hidden width; V1 keeps its residual stream fixed and
prunes each bottleneck, whose shuffle `ShuffledGroupConv` maps itself (see `pruning_ignored_layers`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from edgekit.zoo.layers import ClassifierMixin, make_divisible
from edgekit.zoo.registry import register_model, torchvision_macs


class ShuffledGroupConv(nn.Conv2d):
    """Channel shuffle fused into the grouped 1x1 conv that reads it (V1's second pointwise conv).

    The shuffle is a stored permutation applied as a gather: output position a*n + b reads input
    channel b*g + a (megvii's reshape(n, g) + permute). Keeping it explicit lets pruning delete input
    channels: `prune_inputs` drops them from both the permutation and the weight, which torch-pruning
    cannot do through a reshape. `perm` is a buffer so a pruned checkpoint keeps its order."""

    def __init__(self, in_ch: int, out_ch: int, groups: int):
        super().__init__(in_ch, out_ch, 1, bias=False, groups=groups)
        self.register_buffer("perm", self.default_perm(in_ch, groups))

    @staticmethod
    def default_perm(channels: int, groups: int) -> torch.Tensor:
        return torch.arange(channels).view(channels // groups, groups).t().reshape(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.index_select(1, self.perm))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key, weight = prefix + "perm", state_dict.get(prefix + "weight")
        if key not in state_dict and weight is not None:  # reference checkpoints carry no permutation
            state_dict[key] = self.default_perm(weight.shape[1] * self.groups, self.groups)
        if key in state_dict and state_dict[key].shape != self.perm.shape:  # a pruned checkpoint
            self.perm = torch.empty_like(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def pruning_groups(self) -> int:
        """Channel groups for torch-pruning: it removes the same local indices from every block of
        `period` inputs. A period that divides n = in/g (keeps the previous grouped conv's groups equal)
        and is coprime with g (each block then hits every one of our groups once: i mod g cycles) keeps
        this conv's groups equal too."""
        n, g = self.in_channels // self.groups, self.groups
        period = max(d for d in range(1, n + 1) if n % d == 0 and math.gcd(d, g) == 1)
        return self.in_channels // period

    def prune_inputs(self, idxs) -> None:
        drop = {int(i) for i in idxs}
        perm, per_group = self.perm.tolist(), self.in_channels // self.groups
        keep_pos = [j for j, i in enumerate(perm) if i not in drop]
        cols = [[j % per_group for j in keep_pos if j // per_group == k] for k in range(self.groups)]
        if len({len(c) for c in cols}) != 1:
            raise RuntimeError(f"pruning would leave unequal conv groups {[len(c) for c in cols]}")
        w = self.weight.data.view(self.groups, -1, *self.weight.shape[1:])
        self.weight = nn.Parameter(torch.cat([w[k][:, c] for k, c in enumerate(cols)], 0))
        rank = {old: new for new, old in enumerate(i for i in range(self.in_channels) if i not in drop)}
        self.perm = torch.tensor([rank[perm[j]] for j in keep_pos], dtype=torch.long, device=self.perm.device)
        self.in_channels = len(keep_pos)

    def prune_outputs(self, idxs) -> None:
        drop, per_group = {int(i) for i in idxs}, self.out_channels // self.groups
        keep = [i for i in range(self.out_channels) if i not in drop]
        if len({sum(i // per_group == k for i in keep) for k in range(self.groups)}) != 1:
            raise RuntimeError("pruning would leave unequal conv groups")
        self.weight = nn.Parameter(self.weight.data[keep])
        self.out_channels = len(keep)


def _shuffled_conv_pruner():
    """torch-pruning handler for ShuffledGroupConv (in and out channels are independent, like a conv)."""
    from torch_pruning.pruner.function import BasePruningFunc

    class ShuffledGroupConvPruner(BasePruningFunc):
        def prune_in_channels(self, layer, idxs):
            layer.prune_inputs(idxs)
            return layer

        def prune_out_channels(self, layer, idxs):
            layer.prune_outputs(idxs)
            return layer

        def get_in_channels(self, layer):
            return layer.in_channels

        def get_out_channels(self, layer):
            return layer.out_channels

        def get_in_channel_groups(self, layer):
            return layer.pruning_groups()

        def get_out_channel_groups(self, layer):
            return layer.groups

    return ShuffledGroupConvPruner()


class ShuffleV1Block(nn.Module):
    """Grouped 1x1 -> depthwise 3x3 -> shuffle + grouped 1x1; stride 2 concatenates a 3x3 avg-pooled
    shortcut (so the conv branch makes out - in channels), stride 1 adds the identity."""

    def __init__(self, inp: int, oup: int, groups: int, first_group: bool, stride: int):
        super().__init__()
        mid = oup // 4
        outputs = oup - inp if stride == 2 else oup
        self.branch_main_1 = nn.Sequential(
            nn.Conv2d(inp, mid, 1, bias=False, groups=1 if first_group else groups),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False),
            nn.BatchNorm2d(mid),
        )
        self.branch_main_2 = nn.Sequential(ShuffledGroupConv(mid, outputs, groups), nn.BatchNorm2d(outputs))
        self.branch_proj = nn.AvgPool2d(3, 2, 1) if stride == 2 else None
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branch_main_2(self.branch_main_1(x))
        if self.branch_proj is None:
            return self.relu(out + x)
        return torch.cat((self.branch_proj(x), self.relu(out)), 1)


class ShuffleNetV1(ClassifierMixin, nn.Module):
    """`small_input=True` runs the stem conv at stride 1 without the max-pool (8x less downsampling, a
    32x32 image ends on 4x4); parameter count unchanged. `width_mult` rounds the stem and stage widths
    to multiples of 4*groups, so the bottleneck (width/4) and the concatenated branch split into groups."""

    classifier_path = "classifier.0"

    def __init__(
        self,
        widths,
        groups: int = 3,
        num_classes: int = 1000,
        in_chans: int = 3,
        small_input: bool = False,
        width_mult: float = 1.0,
    ):
        super().__init__()
        self.num_classes = num_classes
        stem, *stages = [make_divisible(c * width_mult, 4 * groups) for c in widths]
        self.first_conv = nn.Sequential(
            nn.Conv2d(in_chans, stem, 3, 1 if small_input else 2, 1, bias=False),
            nn.BatchNorm2d(stem),
            nn.ReLU(inplace=True),
        )
        self.maxpool = nn.Identity() if small_input else nn.MaxPool2d(3, 2, 1)
        blocks, in_ch = [], stem
        for stage, (out_ch, repeats) in enumerate(zip(stages, (4, 8, 4), strict=True)):
            for i in range(repeats):
                blocks.append(ShuffleV1Block(in_ch, out_ch, groups, stage == 0 and i == 0, 2 if i == 0 else 1))
                in_ch = out_ch
        self.features = nn.Sequential(*blocks)
        self.globalpool = nn.AdaptiveAvgPool2d(1)
        self.num_features = in_ch
        self.classifier = nn.Sequential(nn.Linear(in_ch, num_classes, bias=False))  # bias-free, as megvii
        for name, m in self.named_modules():  # megvii's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, 0.01 if name.startswith("first") else 1.0 / m.weight.shape[1])
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.constant_(m.bias, 0.0001)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.maxpool(self.first_conv(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.globalpool(x), 1)
        return x if pre_logits else self.classifier[0](x)

    def pruning_ignored_layers(self) -> list[nn.Module]:
        # The residual/concat stream feeds grouped convs whose groups a pruned stream would unbalance:
        # keep the convs that write it (stem, every ShuffledGroupConv) fixed; only bottlenecks shrink.
        shuffled = [m for m in self.modules() if isinstance(m, ShuffledGroupConv)]
        return super().pruning_ignored_layers() + [self.first_conv[0]] + shuffled

    def pruning_options(self) -> dict:
        # The bottleneck group crosses the shuffle: ShuffledGroupConv maps the indices itself.
        return {"customized_pruners": {ShuffledGroupConv: _shuffled_conv_pruner()}}


class InvertedResidual(nn.Module):
    """V2 unit: stride 1 splits the channels in half and transforms one half; stride 2 transforms the
    input in two branches. The halves are concatenated and shuffled (2 groups)."""

    def __init__(self, inp: int, oup: int, stride: int):
        super().__init__()
        self.stride = stride
        branch = oup // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False),
                nn.BatchNorm2d(inp),
                nn.Conv2d(inp, branch, 1, bias=False),
                nn.BatchNorm2d(branch),
                nn.ReLU(inplace=True),
            )
        self.branch2 = nn.Sequential(
            nn.Conv2d(inp if stride > 1 else branch, branch, 1, bias=False),
            nn.BatchNorm2d(branch),
            nn.ReLU(inplace=True),
            nn.Conv2d(branch, branch, 3, stride, 1, groups=branch, bias=False),
            nn.BatchNorm2d(branch),
            nn.Conv2d(branch, branch, 1, bias=False),
            nn.BatchNorm2d(branch),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            a, b = x1, self.branch2(x2)
        else:
            a, b = self.branch1(x), self.branch2(x)
        # concat + channel shuffle with 2 groups == interleave the halves (a0, b0, a1, b1, ...). Written as
        # stack + flatten because torch-pruning crashes on the view/transpose/view form (its reshape mapping).
        return torch.stack((a, b), dim=2).flatten(1, 2)


class ShuffleNetV2(ClassifierMixin, nn.Module):
    """`small_input=True` runs conv1 at stride 1 without the max-pool (a 32x32 image ends on 4x4);
    parameter count unchanged. `width_mult` rounds stage widths to multiples of 4 (each half stays
    even) and conv1/conv5 to multiples of 8; torchvision's widths are all such multiples, so 1.0 is exact."""

    classifier_path = "fc"
    stage2: nn.Sequential  # set in __init__ by name
    stage3: nn.Sequential
    stage4: nn.Sequential

    def __init__(
        self,
        stage_widths,
        num_classes: int = 1000,
        in_chans: int = 3,
        small_input: bool = False,
        width_mult: float = 1.0,
    ):
        super().__init__()
        self.num_classes = num_classes
        stem, last = make_divisible(stage_widths[0] * width_mult, 8), make_divisible(stage_widths[-1] * width_mult, 8)
        stages = [make_divisible(c * width_mult, 4) for c in stage_widths[1:-1]]
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_chans, stem, 3, 1 if small_input else 2, 1, bias=False),
            nn.BatchNorm2d(stem),
            nn.ReLU(inplace=True),
        )
        self.maxpool = nn.Identity() if small_input else nn.MaxPool2d(3, 2, 1)
        in_ch = stem
        for name, repeats, out_ch in zip(("stage2", "stage3", "stage4"), (4, 8, 4), stages, strict=True):
            units = [InvertedResidual(in_ch, out_ch, 2)] + [
                InvertedResidual(out_ch, out_ch, 1) for _ in range(repeats - 1)
            ]
            setattr(self, name, nn.Sequential(*units))
            in_ch = out_ch
        self.conv5 = nn.Sequential(nn.Conv2d(in_ch, last, 1, bias=False), nn.BatchNorm2d(last), nn.ReLU(inplace=True))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_features = last
        self.fc = nn.Linear(last, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        return self.conv5(self.stage4(self.stage3(self.stage2(x))))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.fc(x)

    def pruning_ignored_layers(self) -> list[nn.Module]:
        # Channels that pass through a chunk/concat + channel shuffle stay fixed: keep the convs that write
        # them (the last 1x1 of every branch). Still pruned: conv1, conv5 and each branch's hidden width
        # (1x1 -> depthwise 3x3 -> 1x1 middle), whose groups never reach a shuffle.
        units = [u for s in (self.stage2, self.stage3, self.stage4) for u in s if isinstance(u, InvertedResidual)]
        writers = [u.branch2[5] for u in units] + [u.branch1[2] for u in units if u.stride > 1]
        return super().pruning_ignored_layers() + writers


_V1_PAPER = (
    "Zhang et al., ShuffleNet: An Extremely Efficient Convolutional Neural Network for Mobile Devices, CVPR 2018"
)
# The paper's "FLOPs" are multiply-adds (its MobileNet rows are MobileNet's mult-adds).
_V1_FLOPS = "Zhang et al. 2018, Table 2: ShuffleNet {} (g = 3) {} MFLOPs"
_V2_PAPER = "Ma et al., ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design, ECCV 2018"


@register_model(
    "shufflenet_v1_g3",
    family="shufflenet_v1",
    paper=_V1_PAPER,
    aliases=("shufflenet_v1",),
    published_macs=140,
    macs_source=_V1_FLOPS.format("1x", 140) + " (megvii-model/ShuffleNet-Series README: 138M)",
)
def shufflenet_v1_g3(**kwargs) -> ShuffleNetV1:
    return ShuffleNetV1((24, 240, 480, 960), groups=3, **kwargs)


@register_model(
    "shufflenet_v1_g3_050",
    family="shufflenet_v1",
    paper=_V1_PAPER,
    published_macs=38,
    macs_source=_V1_FLOPS.format("0.5x", 38),
)
def shufflenet_v1_g3_050(**kwargs) -> ShuffleNetV1:
    return ShuffleNetV1((12, 120, 240, 480), groups=3, **kwargs)


@register_model(
    "shufflenet_v2_x0_5",
    family="shufflenet_v2",
    paper=_V2_PAPER,
    **torchvision_macs("ShuffleNet_V2_X0_5_Weights", 0.04),
)
def shufflenet_v2_x0_5(**kwargs) -> ShuffleNetV2:
    return ShuffleNetV2((24, 48, 96, 192, 1024), **kwargs)


@register_model(
    "shufflenet_v2_x1_0",
    family="shufflenet_v2",
    paper=_V2_PAPER,
    aliases=("shufflenet_v2", "shufflenet"),
    **torchvision_macs("ShuffleNet_V2_X1_0_Weights", 0.145),
)
def shufflenet_v2_x1_0(**kwargs) -> ShuffleNetV2:
    return ShuffleNetV2((24, 116, 232, 464, 1024), **kwargs)


@register_model(
    "shufflenet_v2_x1_5",
    family="shufflenet_v2",
    paper=_V2_PAPER,
    **torchvision_macs("ShuffleNet_V2_X1_5_Weights", 0.296),
)
def shufflenet_v2_x1_5(**kwargs) -> ShuffleNetV2:
    return ShuffleNetV2((24, 176, 352, 704, 1024), **kwargs)


@register_model(
    "shufflenet_v2_x2_0",
    family="shufflenet_v2",
    paper=_V2_PAPER,
    **torchvision_macs("ShuffleNet_V2_X2_0_Weights", 0.583),
)
def shufflenet_v2_x2_0(**kwargs) -> ShuffleNetV2:
    return ShuffleNetV2((24, 244, 488, 976, 2048), **kwargs)
