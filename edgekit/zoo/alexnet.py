"""AlexNet and its 2012-2014 relatives, in one class with torchvision's `features` / `avgpool` /
`classifier` layout (so module names match across the three and torchvision's AlexNet file loads as is).

- `alexnet`: Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep Convolutional Neural
  Networks", NIPS 2012, as torchvision implements it: the single-tower 64-192-384-256-256 variant of
  Krizhevsky's "One weird trick for parallelizing convolutional neural networks" (arXiv 2014), no LRN.
  61,100,840 parameters, equal to torchvision's.
- `alexnet_lrn`: the NIPS 2012 network as Caffe's `bvlc_alexnet` deploy.prototxt defines it: 96-256-384-
  384-256 convs, LRN after conv1 and conv2 (Caffe's order conv-ReLU-LRN-pool), and the paper's two-GPU
  split kept as groups=2 in conv2, conv4 and conv5. 60,965,224 parameters, equal to bvlc_alexnet's
  (227x227 input, 6x6x256 final map).
- `zfnet`: Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014, Figure 3:
  96 7x7/2, 256 5x5/2, 384, 384, 256 3x3, FC 4096-4096, contrast normalization across maps after the first
  two pools, one tower (no groups). 3x3/2 pools round up (Caffe's rule) so a 224 image gives the figure's
  110-55-26-13-13-13-6 maps. 62,357,608 parameters, counted from Figure 3 (the authors published no code);
  osmr/imgclsmob's (pytorchcv) `zfnet` has the same count.
"""

from __future__ import annotations

import torch
from torch import nn

from edgekit.zoo.layers import ClassifierMixin, make_divisible
from edgekit.zoo.registry import register_model, torchvision_macs

# A conv row is (out_channels, kernel, stride, padding, groups) and is followed by its own ReLU;
# "M" is a 3x3/2 max-pool, "N" a local response normalization.
_TORCHVISION = [
    (64, 11, 4, 2, 1),
    "M",
    (192, 5, 1, 2, 1),
    "M",
    (384, 3, 1, 1, 1),
    (256, 3, 1, 1, 1),
    (256, 3, 1, 1, 1),
    "M",
]
_CAFFE_BVLC = [
    (96, 11, 4, 0, 1),
    "N",
    "M",
    (256, 5, 1, 2, 2),
    "N",
    "M",
    (384, 3, 1, 1, 1),
    (384, 3, 1, 1, 2),
    (256, 3, 1, 1, 2),
    "M",
]
_ZFNET = [
    (96, 7, 2, 1, 1),
    "M",
    "N",
    (256, 5, 2, 0, 1),
    "M",
    "N",
    (384, 3, 1, 1, 1),
    (384, 3, 1, 1, 1),
    (256, 3, 1, 1, 1),
    "M",
]


def _lrn() -> nn.LocalResponseNorm:
    # bvlc_alexnet's norm1/norm2: local_size 5, alpha 1e-4, beta 0.75, k 1. PyTorch divides alpha by the
    # window size as Caffe does, so the numbers carry over. (The paper writes k=2 with alpha not divided.)
    return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)


class AlexNet(ClassifierMixin, nn.Module):
    """`small_input=True` (28-64 px images): the stem conv runs at stride 1 with "same" padding (kernel
    unchanged) and, where `drop_stem_pool_on_small_input` (ZFNet, whose second conv also strides), the first
    max-pool becomes an Identity; the adaptive pool then averages to 1x1 instead of 6x6, so classifier.1
    takes C inputs instead of C*36. With the 256-channel final map that is 35*256*4096 = 36,700,160 fewer
    parameters at width_mult=1.0 (conv parameters are unchanged). A 32x32 image ends on a 3x3 map.

    `width_mult` scales every conv width and the two hidden FC widths (4096), each rounded with
    make_divisible(., 8); multiples of 8 also keep the groups=2 convs of `alexnet_lrn` divisible.

    Pruning needs no rule here: torch-pruning reads `groups` itself and removes the same channels from
    both halves of a groups=2 conv (checked exact against zeroed channels). Its round_to=8 is applied per
    half, so narrow copies of `alexnet_lrn` lose more than `ratio` of their grouped channels."""

    classifier_path = "classifier.6"

    def __init__(
        self,
        layers=_TORCHVISION,
        num_classes: int = 1000,
        in_chans: int = 3,
        small_input: bool = False,
        width_mult: float = 1.0,
        dropout: float = 0.5,
        ceil_pool: bool = False,
        drop_stem_pool_on_small_input: bool = False,
    ):
        super().__init__()
        self.num_classes = num_classes
        modules: list[nn.Module] = []
        in_ch, first_conv, first_pool = in_chans, True, True
        for row in layers:
            if row == "M":
                drop = small_input and first_pool and drop_stem_pool_on_small_input
                modules.append(nn.Identity() if drop else nn.MaxPool2d(3, 2, ceil_mode=ceil_pool))
                first_pool = False
            elif row == "N":
                modules.append(_lrn())
            else:
                out, kernel, stride, padding, groups = row
                if small_input and first_conv:
                    stride, padding = 1, kernel // 2
                out_ch = make_divisible(out * width_mult, 8)  # every reference width is a multiple of 8
                modules += [nn.Conv2d(in_ch, out_ch, kernel, stride, padding, groups=groups), nn.ReLU(inplace=True)]
                in_ch, first_conv = out_ch, False
        self.features = nn.Sequential(*modules)
        pool = 1 if small_input else 6
        self.avgpool = nn.AdaptiveAvgPool2d(pool)  # identity at the reference input size
        hidden = make_divisible(4096 * width_mult, 8)
        self.num_features = hidden
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(in_ch * pool * pool, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        for i in range(6):  # Dropout, Linear, ReLU, Dropout, Linear, ReLU; classifier.6 is the classifier
            x = self.classifier[i](x)
        return x if pre_logits else self.classifier[6](x)


_PAPER = "Krizhevsky et al., ImageNet Classification with Deep Convolutional Neural Networks, NIPS 2012"


@register_model(
    "alexnet", family="alexnet", paper=f"{_PAPER} (torchvision layout)", **torchvision_macs("AlexNet_Weights", 0.714)
)
def alexnet(**kwargs) -> AlexNet:
    return AlexNet(_TORCHVISION, **kwargs)


@register_model("alexnet_lrn", family="alexnet", paper=f"{_PAPER} (Caffe bvlc_alexnet)", input_size=(3, 227, 227))
def alexnet_lrn(**kwargs) -> AlexNet:
    return AlexNet(_CAFFE_BVLC, **kwargs)


@register_model(
    "zfnet", family="alexnet", paper="Zeiler & Fergus, Visualizing and Understanding Convolutional Networks, ECCV 2014"
)
def zfnet(**kwargs) -> AlexNet:
    return AlexNet(_ZFNET, ceil_pool=True, drop_stem_pool_on_small_input=True, **kwargs)
