"""The closed choices of the command line, as Enums (typer shows them as [a|b|c] and checks them).

They repeat the recipe's Literal types on purpose: importing the stage configs would import torch, and
`edgekit --help` must not wait for it. tests/test_cli_typer.py holds each Enum equal to its Literal."""

from enum import Enum


class Importance(str, Enum):
    l2 = "l2"
    l1 = "l1"
    bn_scale = "bn_scale"
    taylor = "taylor"
    random = "random"


class Calibration(str, Enum):
    minmax = "minmax"
    entropy = "entropy"
    percentile = "percentile"


class Mode(str, Enum):
    """qat.mode and rewrite.mode."""

    auto = "auto"
    off = "off"
    on = "on"


class Platform(str, Enum):
    cpu = "cpu"
    openvino = "openvino"
    tensorrt = "tensorrt"
    jetson = "jetson"


class BenchBackend(str, Enum):
    onnxruntime = "onnxruntime"
    onnxruntime_cuda = "onnxruntime-cuda"
    onnxruntime_trt = "onnxruntime-trt"
    tensorrt = "tensorrt"


class SearchAlgorithm(str, Enum):
    ga = "ga"
    pso = "pso"
    random = "random"
