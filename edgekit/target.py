"""Where the model will run: the recipe's `target` section, read by every stage that depends on it
(the int8 form in quantize, engines in build, the GPU/TensorRT rows in validate, the latency search)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TENSORRT_TARGETS = ("tensorrt", "jetson")


@dataclass
class TargetConfig:
    """`platform`: cpu (ONNX Runtime on x86/ARM CPUs: U8-activation int8) or tensorrt / jetson
    (TensorRT: symmetric S8 Q/DQ int8, and engines built on this machine when TensorRT and a GPU are here)."""

    platform: Literal["cpu", "tensorrt", "jetson"] = "cpu"

    @property
    def tensorrt(self) -> bool:
        return self.platform in TENSORRT_TARGETS
