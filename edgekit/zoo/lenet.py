"""LeNet-5 (LeCun et al., "Gradient-Based Learning Applied to Document Recognition", Proc. IEEE 1998).

C1-S2-C3-S4-C5-F6-output with tanh and average pooling as in the paper (full C3 connectivity, the
common simplification). Expects 32x32; `small_input=True` pads C1 by 2 so 28x28 images (MNIST) fit.
"""

from __future__ import annotations

import torch
from torch import nn

from edgekit.zoo.layers import ClassifierMixin
from edgekit.zoo.registry import register_model


class LeNet5(ClassifierMixin, nn.Module):
    """61,706 parameters at num_classes=10, in_chans=1. C5 is followed by a global average pool (no
    parameters; identity on the paper's 1x1 C5 map) so other sizes also work: with `small_input=True` a
    32x32 image gives a 2x2 C5 map. `width_mult` scales the 6-16-120-84 widths, rounded to the nearest
    integer (at least 1): these widths are not multiples of 8, so make_divisible would break 1.0 exactness."""

    classifier_path = "fc2"

    def __init__(self, num_classes: int = 10, in_chans: int = 1, small_input: bool = False, width_mult: float = 1.0):
        super().__init__()
        self.num_classes = num_classes
        c1, c3, c5, f6 = (max(1, round(c * width_mult)) for c in (6, 16, 120, 84))
        self.c1 = nn.Conv2d(in_chans, c1, 5, padding=2 if small_input else 0)
        self.act1 = nn.Tanh()
        self.s2 = nn.AvgPool2d(2)
        self.c3 = nn.Conv2d(c1, c3, 5)
        self.act3 = nn.Tanh()
        self.s4 = nn.AvgPool2d(2)
        self.c5 = nn.Conv2d(c3, c5, 5)
        self.act5 = nn.Tanh()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = f6
        self.fc1 = nn.Linear(c5, f6)
        self.act6 = nn.Tanh()
        self.fc2 = nn.Linear(f6, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.s2(self.act1(self.c1(x)))
        x = self.s4(self.act3(self.c3(x)))
        return self.act5(self.c5(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.act6(self.fc1(torch.flatten(self.pool(x), 1)))
        return x if pre_logits else self.fc2(x)


@register_model(
    "lenet5",
    family="lenet",
    paper="LeCun et al., Proc. IEEE 1998",
    input_size=(1, 32, 32),
    num_classes=10,
    aliases=("lenet",),
)
def lenet5(**kwargs) -> LeNet5:
    return LeNet5(**kwargs)
