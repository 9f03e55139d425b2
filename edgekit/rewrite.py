"""The deployment rewrite: int8-friendly forms of a trained network's float islands.

ONNX Runtime's CPU provider has no int8 kernel for HardSwish, SiLU or the squeeze-and-excitation gates
(global pool, two 1x1 convolutions, a hard-sigmoid and a Mul): in an int8 MobileNetV3 they run in float
between DequantizeLinear and QuantizeLinear pairs, which is why int8 bought 1.1x on mobilenet_v3_large
and 3.6x on ResNet18 (issue 14). The rewrite does what the MobileNetV3 paper's "minimalistic" models and
EfficientNet-Lite do: every HardSwish / SiLU / GELU / Mish becomes ReLU (which int8 convolutions fuse),
and optionally every SE block goes (an identity: SE returns its input times a gate, so the shapes
stay). The weights are kept; accuracy is recovered by distilling from the original (the rewrite stage).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from torch import nn

# Activations without an int8 kernel that ReLU replaces (by type, and by class name for timm's own).
SWAPPED_ACTIVATIONS: tuple[type[nn.Module], ...] = (nn.Hardswish, nn.SiLU, nn.GELU, nn.Mish)
SWAPPED_ACTIVATION_NAMES = {"HardSwish", "HardSwishMe", "Swish", "SwishMe", "SiLU", "GELU", "Mish", "MishMe"}
# Squeeze-and-excitation blocks by class name: edgekit's zoo, torchvision (SqueezeExcitation), timm
# (SqueezeExcite, SEModule, EffectiveSEModule), Cadene's SENet (SEModule).
SE_NAMES = {"SqueezeExcite", "SqueezeExcitation", "SEModule", "SELayer", "EffectiveSEModule"}


@dataclass
class Rewritten:
    """The rewritten model and what changed: activations swapped (by class) and SE blocks removed."""

    model: nn.Module
    activations: dict[str, int] = field(default_factory=dict)
    se_removed: int = 0
    se_kept: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.activations) or self.se_removed > 0

    def summary(self) -> str:
        parts = [f"{n} {cls} -> ReLU" for cls, n in sorted(self.activations.items())]
        if self.se_removed:
            parts.append(f"{self.se_removed} SE blocks removed")
        if self.se_kept:
            parts.append(f"{self.se_kept} SE blocks kept")
        return ", ".join(parts) or "nothing to rewrite"


def is_se(module: nn.Module) -> bool:
    return type(module).__name__ in SE_NAMES


def is_swapped_activation(module: nn.Module) -> bool:
    return isinstance(module, SWAPPED_ACTIVATIONS) or type(module).__name__ in SWAPPED_ACTIVATION_NAMES


def rewrite(model: nn.Module, drop_se: bool = True) -> Rewritten:
    """A deep copy of `model` with the swaps applied. Activations inside a kept SE block are left alone:
    its gate must stay a bounded sigmoid, and its inner activation runs on a 1x1 map (cheap)."""
    out = Rewritten(copy.deepcopy(model))
    _walk(out.model, out, drop_se)
    return out


def _walk(parent: nn.Module, out: Rewritten, drop_se: bool) -> None:
    for name, child in list(parent.named_children()):
        if is_se(child):
            if drop_se:
                setattr(parent, name, nn.Identity())
                out.se_removed += 1
            else:
                out.se_kept += 1
            continue
        if is_swapped_activation(child):
            setattr(parent, name, nn.ReLU(inplace=False))
            cls = type(child).__name__
            out.activations[cls] = out.activations.get(cls, 0) + 1
            continue
        _walk(child, out, drop_se)


def applies_to(model: nn.Module, drop_se: bool = True) -> bool:
    """Whether the rewrite would change `model` (ResNet, VGG, ReLU MobileNets: no)."""
    return any(is_swapped_activation(m) or (drop_se and is_se(m)) for m in model.modules())
