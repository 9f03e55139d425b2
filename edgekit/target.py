"""Where the model will run: the recipe's `target` section, read by every stage that depends on it
(the int8 form in quantize, engines in build, the GPU/TensorRT/OpenVINO rows in validate and which of
them decide what ships, the latency search)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TENSORRT_TARGETS = ("tensorrt", "jetson")
PLATFORMS = ("cpu", "openvino", "tensorrt", "jetson")


@dataclass
class TargetConfig:
    """`platform`: cpu (ONNX Runtime on x86/ARM CPUs: U8-activation int8), openvino (OpenVINO's CPU plugin:
    the same int8 files, its rows decide what ships; needs `pip install 'edgekit[openvino]'`) or
    tensorrt / jetson (TensorRT: symmetric S8 Q/DQ int8, and engines built on this machine when TensorRT
    and a GPU are here)."""

    platform: Literal["cpu", "openvino", "tensorrt", "jetson"] = "cpu"

    @property
    def tensorrt(self) -> bool:
        return self.platform in TENSORRT_TARGETS

    @property
    def int8_form(self) -> str:
        """The Q/DQ form quantize writes: "cpu" (U8 activations, per-channel S8 weights, the form both
        ONNX Runtime's and OpenVINO's CPU kernels take) or "tensorrt" (symmetric S8 everywhere)."""
        return "tensorrt" if self.tensorrt else "cpu"
