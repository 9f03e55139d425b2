"""GoogLeNet / Inception v1 (Szegedy et al., "Going Deeper with Convolutions", CVPR 2015) and BN-Inception
(Ioffe & Szegedy, "Batch Normalization: Accelerating Deep Network Training by Reducing Internal Covariate
Shift", ICML 2015, Figure 5).

GoogLeNet follows torchvision's layout and parameter names, including torchvision's quirk: the "5x5" branch
uses a 3x3 kernel (pytorch/vision#906), kept so the published weights load. That file holds the aux heads too:
load it with `aux_logits=True` (or drop its `aux1.`/`aux2.` keys), and since torchvision runs those weights
with `transform_input=True`, normalize the input with mean = std = 0.5 instead of ImageNet's statistics.

BN-Inception follows the layout and parameter count of Cadene's pretrained-models.pytorch `bninception`
(conv biases before every BN included); module names follow the GoogLeNet ones here, not Cadene's flat names,
and BN momentum is PyTorch's 0.1 (Cadene's 0.9 is a leftover of the Caffe conversion).
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from edgekit.zoo.layers import ClassifierMixin, make_divisible
from edgekit.zoo.registry import register_model, torchvision_macs


class BasicConv2d(nn.Module):
    """Conv + BatchNorm + ReLU with torchvision's GoogLeNet names (conv, bn). GoogLeNet: no conv bias, BN eps
    1e-3; BN-Inception (converted from Caffe): conv bias kept, BN eps 1e-5."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = False,
        bn_eps: float = 1e-3,
    ):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding, bias=bias)
        self.bn = nn.BatchNorm2d(out_ch, eps=bn_eps)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """GoogLeNet module: 1x1 | 1x1-3x3 | 1x1-"5x5" (a 3x3, as in torchvision) | maxpool-1x1, concatenated."""

    def __init__(self, in_ch: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int, pool_proj: int):
        super().__init__()
        self.branch1 = BasicConv2d(in_ch, ch1x1, 1)
        self.branch2 = nn.Sequential(BasicConv2d(in_ch, ch3x3red, 1), BasicConv2d(ch3x3red, ch3x3, 3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(in_ch, ch5x5red, 1), BasicConv2d(ch5x5red, ch5x5, 3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), BasicConv2d(in_ch, pool_proj, 1))
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier (training only): 4x4 average pool, 1x1 conv, two FC layers."""

    def __init__(self, in_ch: int, num_classes: int, width: int = 128, hidden: int = 1024, dropout: float = 0.7):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.conv = BasicConv2d(in_ch, width, 1)
        self.fc1 = nn.Linear(width * 16, hidden)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.conv(self.pool(x)), 1)
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


# (1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool proj) per module, GoogLeNet paper Table 1.
_GOOGLENET = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def _trace_with_aux(model: GoogLeNet, x: torch.Tensor):
    return model.forward_with_aux(x)


class GoogLeNet(ClassifierMixin, nn.Module):
    """`aux_logits=True` adds the two auxiliary classifiers (after 4a and 4d). They run only in training
    mode: `forward` still returns the main logits and leaves `(aux2, aux1)` on `self.aux_outputs` for a
    loss (e.g. loss + 0.3 * (aux losses), as in the paper); in eval mode it returns logits only.
    `forward_with_aux(x)` returns `(logits, aux2, aux1)` in any mode.

    `small_input=True` (28-64 px images) runs the 7x7 stem conv at stride 1 and drops the first stem
    max-pool, so the network downsamples 8x instead of 32x (32 px ends on 4x4). Parameter count unchanged.
    `width_mult` scales every channel count and the aux FC width, rounded to a multiple of 8.
    """

    classifier_path = "fc"
    inception3a: Inception  # set in __init__ by name, from _GOOGLENET
    inception3b: Inception
    inception4a: Inception
    inception4b: Inception
    inception4c: Inception
    inception4d: Inception
    inception4e: Inception
    inception5a: Inception
    inception5b: Inception

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        small_input: bool = False,
        width_mult: float = 1.0,
        aux_logits: bool = False,
        dropout: float = 0.2,
        dropout_aux: float = 0.7,
    ):
        super().__init__()
        self.num_classes = num_classes
        ch = partial(_scaled, width_mult=width_mult)
        self.conv1 = BasicConv2d(in_chans, ch(64), 7, 1 if small_input else 2, 3)
        self.maxpool1 = nn.Identity() if small_input else nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = BasicConv2d(ch(64), ch(64), 1)
        self.conv3 = BasicConv2d(ch(64), ch(192), 3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        in_ch = ch(192)
        for name, cfg in _GOOGLENET.items():
            block = Inception(in_ch, *(ch(c) for c in cfg))
            setattr(self, f"inception{name}", block)
            in_ch = block.out_channels
            if name == "3b":
                self.maxpool3 = nn.MaxPool2d(3, 2, ceil_mode=True)
            elif name == "4e":
                self.maxpool4 = nn.MaxPool2d(2, 2, ceil_mode=True)
        if aux_logits:  # registered here, after inception5b, like torchvision (keeps state_dict order)
            aux = partial(InceptionAux, num_classes=num_classes, width=ch(128), hidden=ch(1024), dropout=dropout_aux)
            self.aux1: InceptionAux | None = aux(self.inception4a.out_channels)
            self.aux2: InceptionAux | None = aux(self.inception4d.out_channels)
        else:
            self.aux1 = self.aux2 = None
        self.aux_outputs: tuple[torch.Tensor, torch.Tensor] | None = None
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.num_features = in_ch
        self.fc = nn.Linear(in_ch, num_classes)
        for m in self.modules():  # torchvision's init
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _features(self, x: torch.Tensor, with_aux: bool):
        x = self.maxpool2(self.conv3(self.conv2(self.maxpool1(self.conv1(x)))))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        aux1 = self.aux1(x) if with_aux and self.aux1 is not None else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if with_aux and self.aux2 is not None else None
        x = self.maxpool4(self.inception4e(x))
        return self.inception5b(self.inception5a(x)), aux2, aux1

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._features(x, False)[0]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.dropout(torch.flatten(self.avgpool(x), 1))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with_aux = self.training and self.aux1 is not None
        x, aux2, aux1 = self._features(x, with_aux)
        self.aux_outputs = (aux2, aux1) if with_aux else None
        return self.forward_head(x)

    def forward_with_aux(self, x: torch.Tensor):
        if self.aux1 is None:
            raise ValueError("this GoogLeNet was built with aux_logits=False")
        x, aux2, aux1 = self._features(x, True)
        return self.forward_head(x), aux2, aux1

    def __getstate__(self):
        # Aux outputs of the last training step are non-leaf tensors: deepcopy/pickle must not carry them.
        state = super().__getstate__()
        return {**state, "aux_outputs": None}

    def reset_classifier(self, num_classes: int) -> None:
        super().reset_classifier(num_classes)
        for aux in (self.aux1, self.aux2):
            if aux is not None:
                aux.fc2 = nn.Linear(aux.fc2.in_features, num_classes)

    def pruning_ignored_layers(self) -> list[nn.Module]:
        # The aux heads' last Linear layers emit class scores, like the main classifier.
        return super().pruning_ignored_layers() + [m.fc2 for m in (self.aux1, self.aux2) if m is not None]

    def pruning_options(self) -> dict:
        # The aux heads run only in training mode, but torch-pruning traces in eval mode: trace through
        # forward_with_aux so the heads' input convs are pruned together with the modules they read from.
        return {"forward_fn": _trace_with_aux} if self.aux1 is not None else {}


def _scaled(channels: int, width_mult: float) -> int:
    return make_divisible(channels * width_mult, 8)


class BNInceptionBlock(nn.Module):
    """BN-Inception module: 1x1 | 1x1-3x3 | 1x1-3x3-3x3 (the 5x5 replaced by two 3x3) | pool-1x1 proj.
    Stride-2 modules (3c, 4e) have no 1x1 branch; their max-pool branch passes channels through."""

    def __init__(
        self,
        in_ch: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        chd3x3red: int,
        chd3x3: int,
        pool: str,
        pool_proj: int,
        stride: int = 1,
        pad_pool: bool = False,
    ):
        super().__init__()
        conv = partial(BasicConv2d, bias=True, bn_eps=1e-5)
        self.branch1 = conv(in_ch, ch1x1, 1) if stride == 1 else None
        self.branch2 = nn.Sequential(conv(in_ch, ch3x3red, 1), conv(ch3x3red, ch3x3, 3, stride, 1))
        self.branch3 = nn.Sequential(
            conv(in_ch, chd3x3red, 1), conv(chd3x3red, chd3x3, 3, 1, 1), conv(chd3x3, chd3x3, 3, stride, 1)
        )
        if stride == 1:
            pooling = nn.AvgPool2d(3, 1, 1, ceil_mode=True) if pool == "avg" else nn.MaxPool2d(3, 1, 1, ceil_mode=True)
            self.branch4 = nn.Sequential(pooling, conv(in_ch, pool_proj, 1))
            self.out_channels = ch1x1 + ch3x3 + chd3x3 + pool_proj
        else:
            # Caffe/Cadene pool: 3x3/2, no padding, ceil mode; its output matches the strided convs only for
            # even sizes, so small inputs use the padded floor-mode pool (same size as the convs for any size).
            pooling = nn.MaxPool2d(3, 2, 1) if pad_pool else nn.MaxPool2d(3, 2, ceil_mode=True)
            self.branch4 = nn.Sequential(pooling)
            self.out_channels = ch3x3 + chd3x3 + in_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [] if self.branch1 is None else [self.branch1(x)]
        return torch.cat(outs + [self.branch2(x), self.branch3(x), self.branch4(x)], 1)


# (1x1, 3x3 reduce, 3x3, double 3x3 reduce, double 3x3, pool, pool proj, stride): BN paper Figure 5.
_BN_INCEPTION = {
    "3a": (64, 64, 64, 64, 96, "avg", 32, 1),
    "3b": (64, 64, 96, 64, 96, "avg", 64, 1),
    "3c": (0, 128, 160, 64, 96, "max", 0, 2),
    "4a": (224, 64, 96, 96, 128, "avg", 128, 1),
    "4b": (192, 96, 128, 96, 128, "avg", 128, 1),
    "4c": (160, 128, 160, 128, 160, "avg", 128, 1),
    "4d": (96, 128, 192, 160, 192, "avg", 128, 1),
    "4e": (0, 128, 192, 192, 256, "max", 0, 2),
    "5a": (352, 192, 320, 160, 224, "avg", 128, 1),
    "5b": (352, 192, 320, 192, 224, "max", 128, 1),
}


class BNInception(ClassifierMixin, nn.Module):
    """Inception with Batch Normalization (no dropout, as in the paper). The final pool is adaptive
    (Cadene uses a fixed 7x7 average pool: the same thing at 224 px).

    `small_input=True` (28-64 px images) runs the 7x7 stem conv at stride 1 and drops the first stem
    max-pool (8x downsampling in all; 32 px ends on 4x4), and the stride-2 modules' max-pools get padding 1
    so odd feature sizes (7x7 from 28 px) still line up with their strided convs. Parameter count unchanged.
    Without it the pools are Caffe's, so 3c and 4e need even input maps (224 px gives 28 and 14).
    `width_mult` scales every channel count, rounded to a multiple of 8.
    """

    classifier_path = "fc"

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, small_input: bool = False, width_mult: float = 1.0):
        super().__init__()
        self.num_classes = num_classes
        ch = partial(_scaled, width_mult=width_mult)
        conv = partial(BasicConv2d, bias=True, bn_eps=1e-5)
        self.conv1 = conv(in_chans, ch(64), 7, 1 if small_input else 2, 3)
        self.maxpool1 = nn.Identity() if small_input else nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = conv(ch(64), ch(64), 1)
        self.conv3 = conv(ch(64), ch(192), 3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        in_ch = ch(192)
        for name, (c1, c3r, c3, cdr, cd, pool, proj, stride) in _BN_INCEPTION.items():
            block = BNInceptionBlock(
                in_ch, ch(c1), ch(c3r), ch(c3), ch(cdr), ch(cd), pool, ch(proj), stride, pad_pool=small_input
            )
            setattr(self, f"inception{name}", block)
            in_ch = block.out_channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_features = in_ch
        self.fc = nn.Linear(in_ch, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool2(self.conv3(self.conv2(self.maxpool1(self.conv1(x)))))
        for name in _BN_INCEPTION:
            x = getattr(self, f"inception{name}")(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.fc(x)


_PAPER_V1 = "Szegedy et al., Going Deeper with Convolutions, CVPR 2015"
_PAPER_BN = "Ioffe & Szegedy, Batch Normalization: Accelerating Deep Network Training, ICML 2015"


@register_model(
    "googlenet",
    family="inception",
    paper=_PAPER_V1,
    aliases=("inception_v1",),
    **torchvision_macs("GoogLeNet_Weights", 1.498),
)
def googlenet(**kwargs) -> GoogLeNet:
    """6,624,904 params as built (torchvision googlenet(aux_logits=False)). The two training-only auxiliary
    heads come with `create_model("googlenet", aux_logits=True)`: 13,004,888 params (torchvision's default)."""
    return GoogLeNet(**kwargs)


@register_model("bn_inception", family="inception", paper=_PAPER_BN)
def bn_inception(**kwargs) -> BNInception:
    """11,295,240 params, as Cadene's pretrained-models.pytorch `bninception`."""
    return BNInception(**kwargs)
