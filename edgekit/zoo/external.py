"""Models from torchvision or timm (`torchvision:NAME`, `timm:NAME`), when the user has them installed.

They are wrapped in the zoo contract so every stage treats them like zoo models: the last nn.Linear
(timm: `get_classifier()`) is the classifier that pruning keeps. Neither library is a dependency; with
it missing, the name fails with a one-line error saying what to install. No weights are downloaded.
"""

from __future__ import annotations

import importlib
import logging

import torch
from torch import nn

from edgekit.errors import EdgekitError
from edgekit.zoo.layers import ClassifierMixin

log = logging.getLogger(__name__)

PREFIXES = ("torchvision:", "timm:")


def is_external(name: str) -> bool:
    return name.startswith(PREFIXES)


def _import(lib: str, name: str):
    try:
        return importlib.import_module(lib)
    except ImportError:
        raise EdgekitError(
            f"{name} needs {lib}, which is not installed: pip install {lib} (or pick a zoo model: `edgekit models`)"
        ) from None


def _last_linear(net: nn.Module) -> str:
    names = [n for n, m in net.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise EdgekitError("the external model has no nn.Linear classifier: use a classification model")
    return names[-1]


def _pair(size: tuple[int, ...]) -> tuple[int, int]:
    """A Conv2d's kernel_size/stride/padding/dilation: stored as 2-tuples, annotated tuple[int, ...]."""
    h, w = size
    return h, w


def _adapt_in_chans(net: nn.Module, in_chans: int) -> None:
    """torchvision builds 3-channel stems only: swap the first conv for one with `in_chans` inputs."""
    for parent in net.modules():
        for child_name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                if child.in_channels != in_chans:
                    setattr(
                        parent,
                        child_name,
                        nn.Conv2d(
                            in_chans,
                            child.out_channels,
                            _pair(child.kernel_size),
                            _pair(child.stride),
                            child.padding if isinstance(child.padding, str) else _pair(child.padding),
                            _pair(child.dilation),
                            child.groups,
                            child.bias is not None,
                        ),
                    )
                return


class ExternalModel(ClassifierMixin, nn.Module):
    def __init__(self, net: nn.Module, source: str, num_classes: int):
        super().__init__()
        self.net = net
        self.source = source
        self.num_classes = num_classes
        self.classifier_path = "net." + _last_linear(net)
        self.num_features = self.get_classifier().in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        forward_features = getattr(self.net, "forward_features", None)  # timm models have it
        if forward_features is not None:
            return forward_features(x)
        raise EdgekitError(f"{self.source} has no forward_features: feature distillation needs a zoo or timm model")

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        forward_head = getattr(self.net, "forward_head", None)
        if forward_head is not None:
            return forward_head(x, pre_logits=pre_logits)
        raise EdgekitError(f"{self.source} has no forward_head: use a zoo or timm model")


def create_external(
    name: str, num_classes: int = 1000, in_chans: int = 3, small_input: bool = False, **kwargs
) -> ExternalModel:
    lib, _, arch = name.partition(":")
    module = _import(lib, name)
    if small_input:
        log.info(f"note: {name} has no small-input stem; small images go through its standard stem")
    try:
        if lib == "timm":
            net = module.create_model(arch, pretrained=False, num_classes=num_classes, in_chans=in_chans, **kwargs)
        else:
            net = module.models.get_model(arch, weights=None, num_classes=num_classes, **kwargs)
            _adapt_in_chans(net, in_chans)
    except (KeyError, ValueError, RuntimeError) as exc:
        raise EdgekitError(
            f"{lib} cannot build {arch!r} ({str(exc).splitlines()[0][:120]}): check the name in {lib}'s model list"
        ) from None
    return ExternalModel(net, name, num_classes)
