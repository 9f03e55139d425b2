"""Shared building blocks. Every call site in a forward gets its own module (graph tools need that)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of `divisor`, never dropping more than 10% (MobileNet rule)."""
    min_value = min_value or divisor
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def normal_linear(m: nn.Linear) -> None:
    nn.init.normal_(m.weight, 0, 0.01)


def init_weights(model: nn.Module, linear: Callable[[nn.Linear], object] | None = normal_linear) -> None:
    """torchvision's initialization for conv nets: Kaiming-normal (fan_out, ReLU gain) convolutions with
    zero bias, unit/zero batch norms, and Linear weights from `linear` (normal(0, 0.01) unless a family
    passes its own; None keeps PyTorch's default Linear init, as torchvision's ResNet does) with zero bias."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear is not None:
            linear(m)
            nn.init.zeros_(m.bias)


class ConvBnAct(nn.Sequential):
    """Conv2d (no bias) + BatchNorm + optional activation, indexed 0/1/2 like torchvision's
    Conv2dNormActivation so state_dict keys line up."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int = 3,
        stride: int = 1,
        groups: int = 1,
        act: Callable[[], nn.Module] | None = nn.ReLU,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
        dilation: int = 1,
    ):
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_ch,
                out_ch,
                kernel,
                stride,
                (kernel - 1) // 2 * dilation,
                dilation=dilation,
                groups=groups,
                bias=False,
            ),
            nn.BatchNorm2d(out_ch, eps=bn_eps, momentum=bn_momentum),
        ]
        if act is not None:
            layers.append(act())
        super().__init__(*layers)
        self.out_channels = out_ch


class SqueezeExcite(nn.Module):
    """Squeeze-and-Excitation gate (Hu et al. 2018): pool, 1x1 reduce, act, 1x1 expand, gate."""

    def __init__(
        self,
        channels: int,
        squeeze: int,
        act: Callable[[], nn.Module] = nn.ReLU,
        gate: Callable[[], nn.Module] = nn.Sigmoid,
    ):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = act()
        self.scale_activation = gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return x * scale


class ClassifierMixin:
    """The zoo's model contract (after timm): features, head, and the classifier that pruning keeps.

    Subclasses set `self.classifier_path` (attribute path of the final nn.Linear) and implement
    `forward_features` and `forward_head`.
    """

    classifier_path: str = "fc"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))  # type: ignore[attr-defined]

    def get_classifier(self) -> nn.Linear:
        return self.get_submodule(self.classifier_path)  # type: ignore[attr-defined]

    def reset_classifier(self, num_classes: int) -> None:
        old = self.get_classifier()
        parent_path, _, leaf = self.classifier_path.rpartition(".")
        parent = self.get_submodule(parent_path) if parent_path else self  # type: ignore[attr-defined]
        setattr(parent, leaf, nn.Linear(old.in_features, num_classes))
        self.num_classes = num_classes

    def pruning_ignored_layers(self) -> list[nn.Module]:
        """Layers whose output channels must never be pruned. The classifier always; families add theirs."""
        return [self.get_classifier()]

    def pruning_options(self) -> dict:
        """Extra torch-pruning pruner arguments a family needs (e.g. `out_channel_groups` for grouped
        convolutions, `ignored_layers`, `pruning_ratio_dict`, `customized_pruners`), declared next to the model."""
        return {}


class DropoutLinearHead:
    """`forward_head` for `self.avgpool` + `self.classifier = Sequential(Dropout, Linear)`, the head of
    torchvision's MobileNetV2 and MnasNet (and edgekit's MobileNetV1)."""

    classifier_path = "classifier.1"

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.classifier[0](torch.flatten(self.avgpool(x), 1))  # type: ignore[attr-defined]
        return x if pre_logits else self.classifier[1](x)  # type: ignore[attr-defined]
