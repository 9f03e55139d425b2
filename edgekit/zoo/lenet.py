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
    classifier_path = "fc2"

    def __init__(self, num_classes: int = 10, in_chans: int = 1, small_input: bool = False):
        super().__init__()
        self.num_classes = num_classes
        self.c1 = nn.Conv2d(in_chans, 6, 5, padding=2 if small_input else 0)
        self.act1 = nn.Tanh()
        self.s2 = nn.AvgPool2d(2)
        self.c3 = nn.Conv2d(6, 16, 5)
        self.act3 = nn.Tanh()
        self.s4 = nn.AvgPool2d(2)
        self.c5 = nn.Conv2d(16, 120, 5)
        self.act5 = nn.Tanh()
        self.num_features = 120
        self.fc1 = nn.Linear(120, 84)
        self.act6 = nn.Tanh()
        self.fc2 = nn.Linear(84, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.s2(self.act1(self.c1(x)))
        x = self.s4(self.act3(self.c3(x)))
        return self.act5(self.c5(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.act6(self.fc1(torch.flatten(x, 1)))
        return x if pre_logits else self.fc2(x)


@register_model("lenet5", family="lenet", paper="LeCun et al., Proc. IEEE 1998", input_size=(1, 32, 32), num_classes=10, aliases=("lenet",))
def lenet5(**kwargs) -> LeNet5:
    return LeNet5(**kwargs)
