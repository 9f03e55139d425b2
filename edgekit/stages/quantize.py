"""quantize: post-training static int8 quantization with ONNX Runtime's quantizer, in Q/DQ form.

Weights are signed int8, per channel. Activations depend on the target:
- `cpu`: unsigned int8 (asymmetric). ONNX Runtime's x86 kernels run U8 activations x S8 weights fast;
  signed activations (S8S8) ran slower than fp32 here. Ops that have no int8 kernel in ONNX Runtime's
  CPU provider (HardSwish, HardSigmoid, Sigmoid, ...) stay in float: wrapping them in
  DequantizeLinear/QuantizeLinear costs two extra nodes each and buys nothing.
- `tensorrt`: symmetric signed int8 activations and weights on every op, which is what TensorRT's
  explicit-quantization (Q/DQ) path requires.
Calibration images come from the training split (never validation), a seeded random subset.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from edgekit.artifact import Artifact, ModelEntry
from edgekit.config import ranged
from edgekit.data.transforms import normalize
from edgekit.fileio import atomic_path
from edgekit.progress import Progress

NAME = "quantize"
SECTION = "quantize"

# Ops quantized for the CPU target: those with int8 kernels in ONNX Runtime's CPU provider.
CPU_OP_TYPES = ["Conv", "Gemm", "MatMul", "Add", "Mul", "GlobalAveragePool", "AveragePool", "MaxPool", "Concat", "Relu", "Clip"]


@dataclass
class Config:
    """`enabled`: produce model.int8.onnx. `calibration`: minmax, entropy or percentile range estimation.
    `calib_images`: training images used to calibrate. `percentile`: for the percentile method.
    `target`: cpu (U8 activations, S8 weights) or tensorrt (symmetric S8 everywhere)."""

    enabled: bool = False
    calibration: Literal["minmax", "entropy", "percentile"] = "minmax"
    calib_images: int = ranged(512, 1, 100_000)
    calib_batch: int = ranged(32, 1, 4096)
    percentile: float = ranged(99.999, 90.0, 100.0)
    per_channel: bool = True
    target: Literal["cpu", "tensorrt"] = "cpu"
    seed: int = 0


def skip(art, cfg: Config, ctx) -> str | None:
    return None if cfg.enabled else "quantize.enabled is false (use --int8)"


def calibration_images(ctx, cfg: Config) -> np.ndarray:
    train = ctx.data.train
    gen = torch.Generator().manual_seed(cfg.seed)
    idx = torch.randperm(len(train), generator=gen)[: cfg.calib_images]
    return normalize(train.images[idx], ctx.data.mean, ctx.data.std).numpy()


class _Reader:
    """ONNX Runtime CalibrationDataReader over a numpy array, with progress."""

    def __init__(self, images: np.ndarray, batch: int, input_name: str):
        self.images, self.batch, self.input_name = images, batch, input_name
        self.pos = 0
        self.bar = Progress("calibrate", len(images))

    def get_next(self):
        if self.pos >= len(self.images):
            return None
        x = self.images[self.pos : self.pos + self.batch]
        self.pos += len(x)
        self.bar.update(len(x))
        return {self.input_name: np.ascontiguousarray(x)}

    def rewind(self):
        self.pos = 0


def calibrate(model: Path, images: np.ndarray, cfg: Config, scratch: Path, op_types: list[str] | None):
    """Activation ranges, computed here rather than inside quantize_static: quantize_static does not
    pass histogram sizes to the entropy calibrator, whose defaults (128 bins for 128 quantized bins)
    leave a single candidate threshold, the min/max range, so entropy equalled minmax exactly."""
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator

    symmetric = cfg.target != "cpu"
    method, options = {
        "minmax": (CalibrationMethod.MinMax, {"symmetric": symmetric}),
        "entropy": (CalibrationMethod.Entropy, {"symmetric": symmetric, "num_bins": 2048, "num_quantized_bins": 255 if symmetric else 256}),
        "percentile": (CalibrationMethod.Percentile, {"symmetric": symmetric, "num_bins": 2048, "percentile": cfg.percentile}),
    }[cfg.calibration]
    calibrator = create_calibrator(model, op_types, augmented_model_path=str(scratch / "augmented.onnx"),
                                   calibrate_method=method, extra_options=options)
    calibrator.collect_data(_Reader(images, cfg.calib_batch, "input"))
    return method, calibrator.compute_data()


def quantize_onnx(src: Path, dst: Path, images: np.ndarray, cfg: Config) -> dict:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import save_tensors_data
    from onnxruntime.quantization.shape_inference import quant_pre_process

    cpu = cfg.target == "cpu"
    op_types = CPU_OP_TYPES if cpu else None
    with tempfile.TemporaryDirectory(dir=dst.parent, prefix=".quantize.") as scratch_dir:
        scratch = Path(scratch_dir)
        pre = scratch / "preprocessed.onnx"  # shape-inferred, as ORT advises
        # ORT's pre-process optimizer splits HardSwish into HardSigmoid + Mul, which would leave two
        # float islands per activation; onnxsim has already folded what needs folding.
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True, skip_optimization=cpu)
        method, ranges = calibrate(pre, images, cfg, scratch, op_types)
        save_tensors_data(ranges, scratch / "ranges.json")
        with atomic_path(dst) as tmp:
            quantize_static(
                str(pre), str(tmp), None,
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QUInt8 if cpu else QuantType.QInt8,
                weight_type=QuantType.QInt8,
                per_channel=cfg.per_channel,
                calibrate_method=method,
                op_types_to_quantize=op_types,
                extra_options={"ActivationSymmetric": not cpu, "WeightSymmetric": True},
                calibration_cache_path=str(scratch / "ranges.json"),
            )
    return {"activation_type": "uint8" if cpu else "int8 (symmetric)", "weight_type": "int8 per-channel" if cfg.per_channel else "int8 per-tensor"}


def run(art: Artifact, cfg: Config, ctx) -> dict:
    src = art.entries["model.onnx"]
    images = calibration_images(ctx, cfg)
    dst = ctx.run_dir / "model.int8.onnx"
    info = quantize_onnx(src.path, dst, images, cfg)
    art.add(ModelEntry("model.int8.onnx", "onnx", "int8", src.params, src.macs, dst))
    return {"calibration": cfg.calibration, "calib_images": len(images), "calib_split": "train", "target": cfg.target, **info}
