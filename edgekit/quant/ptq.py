"""Post-training static quantization with ONNX Runtime's quantizer, in Q/DQ form, calibrated once.

`Quantizer` pre-processes the fp32 model and computes the activation ranges one time; `quantize()` can
then be called again and again (e.g. with different `nodes_to_exclude` for mixed precision) and each
call only rewrites the graph from the saved calibration cache, which takes about a second.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np

import edgekit.distributed as dist
from edgekit.fileio import atomic_path
from edgekit.progress import Progress
from edgekit.sharding import across_ranks

# Ops quantized for the CPU target: those with int8 kernels in ONNX Runtime's CPU provider.
CPU_OP_TYPES = [
    "Conv",
    "Gemm",
    "MatMul",
    "Add",
    "Mul",
    "GlobalAveragePool",
    "AveragePool",
    "MaxPool",
    "Concat",
    "Relu",
    "Clip",
]
CALIB_CHUNK = 64  # images per collect_data call: bounds the calibrators' memory at any resolution
# Nodes whose inputs (activation and weight) get Q/DQ and that mixed precision may keep in float.
WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


@dataclass(frozen=True)
class PtqSettings:
    """How to quantize. `target` decides the int8 form: cpu = U8 activations x S8 weights on the ops
    with ONNX Runtime CPU kernels; tensorrt/jetson = symmetric S8 everywhere (TensorRT's explicit
    quantization). `calibration`: minmax, entropy or percentile (at `percentile`)."""

    calibration: Literal["minmax", "entropy", "percentile"] = "minmax"
    calib_batch: int = 32
    percentile: float = 99.999
    per_channel: bool = True
    target: str = "cpu"


class _Reader:
    """ONNX Runtime CalibrationDataReader over a numpy array, with progress (`label` None: silent)."""

    def __init__(self, images: np.ndarray, batch: int, input_name: str, label: str | None = "calibrate"):
        self.images, self.batch, self.input_name = images, batch, input_name
        self.pos, self.end = 0, len(images)
        self.bar = Progress(label, len(images)) if label else None

    def window(self, start: int, end: int) -> None:
        """Read images[start:end] next (one collect_data call)."""
        self.pos, self.end = start, min(end, len(self.images))

    def get_next(self):
        if self.pos >= self.end:
            return None
        x = self.images[self.pos : min(self.pos + self.batch, self.end)]
        self.pos += len(x)
        if self.bar:
            self.bar.update(len(x))
        return {self.input_name: np.ascontiguousarray(x)}

    def rewind(self):
        self.pos, self.end = 0, len(self.images)


def calibrate(model: Path, images: np.ndarray, cfg: PtqSettings, scratch: Path, op_types: list[str] | None):
    """Activation ranges, computed here rather than inside quantize_static: quantize_static does not
    pass histogram sizes to the entropy calibrator, whose defaults (128 bins for 128 quantized bins)
    leave a single candidate threshold, the min/max range, so entropy equalled minmax exactly.

    In a distributed run minmax calibration is split across the ranks (edgekit.sharding): each takes a
    contiguous share of the images and rank 0 joins the ranges. A min of minima is the minimum, so the
    ranges equal one process's exactly. Entropy and percentile stay on rank 0: their histograms are
    re-binned as they grow, and histograms with different bins cannot be summed exactly."""
    method = _method(cfg)[0]
    if calibration_ranks(cfg) > 1:
        share = partial(_minmax_share, Path(model).read_bytes(), images, cfg, op_types)
        return method, _joined_ranges(across_ranks(share))
    return method, _collect(model, images, cfg, scratch, op_types, "calibrate")


def calibration_ranks(cfg: PtqSettings) -> int:
    """How many ranks `calibrate` splits the images over."""
    return dist.world_size() if cfg.calibration == "minmax" else 1


def _method(cfg: PtqSettings):
    from onnxruntime.quantization import CalibrationMethod

    symmetric = cfg.target != "cpu"
    method, options = {
        "minmax": (CalibrationMethod.MinMax, {"symmetric": symmetric}),
        "entropy": (
            CalibrationMethod.Entropy,
            {"symmetric": symmetric, "num_bins": 2048, "num_quantized_bins": 255 if symmetric else 256},
        ),
        "percentile": (
            CalibrationMethod.Percentile,
            {"symmetric": symmetric, "num_bins": 2048, "percentile": cfg.percentile},
        ),
    }[cfg.calibration]
    return method, options


def _collect(model: Path, images: np.ndarray, cfg: PtqSettings, scratch: Path, op_types, label: str | None):
    """ORT's calibrator over `images`: its TensorsData."""
    from onnxruntime.quantization.calibrate import create_calibrator

    method, options = _method(cfg)
    calibrator = create_calibrator(
        model,
        op_types,
        augmented_model_path=str(scratch / "augmented.onnx"),
        calibrate_method=method,
        extra_options=options,
    )
    # In chunks: the histogram calibrators keep every intermediate tensor of what one collect_data call
    # reads (about 25 MB an image for EfficientNet-Lite0 at 224 px, 13 GB for 512 images) and merge
    # their histograms (min/max ranges) across calls.
    reader = _Reader(images, cfg.calib_batch, "input", label)
    chunk = cfg.calib_batch * max(1, CALIB_CHUNK // cfg.calib_batch)
    for start in range(0, len(images), chunk):
        reader.window(start, start + chunk)
        calibrator.collect_data(reader)
    return calibrator.compute_data()


def _minmax_share(model_bytes: bytes, images: np.ndarray, cfg: PtqSettings, op_types, rank: int, world: int):
    """One rank's share of a minmax calibration: {tensor: (lowest, highest)} over its slice of the images
    (empty for a rank with no images). The model comes as bytes: the ranks need not share a disk."""
    start, stop = dist.bounds(len(images), rank, world)
    if stop <= start:
        return {}
    with tempfile.TemporaryDirectory(prefix="edgekit-calibrate-") as tmp:
        path = Path(tmp) / "model.onnx"
        path.write_bytes(model_bytes)
        label = f"calibrate (rank 0's share of {world})" if rank == 0 else None
        data = _collect(path, images[start:stop], cfg, Path(tmp), op_types, label)
    return {name: data[name].range_value for name in data}


def _joined_ranges(parts: list[dict]):
    """The ranks' minmax ranges joined: the lowest of the lows, the highest of the highs."""
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import TensorData, TensorsData

    joined: dict[str, tuple] = {}
    for part in parts:
        for name, (low, high) in part.items():
            if name in joined:
                low, high = np.minimum(joined[name][0], low), np.maximum(joined[name][1], high)
            joined[name] = (low, high)
    return TensorsData(
        CalibrationMethod.MinMax, {name: TensorData(lowest=low, highest=high) for name, (low, high) in joined.items()}
    )


def takes_calibration_cache() -> bool:
    """Whether this ONNX Runtime's quantize_static reads precomputed ranges (calibration_cache_path, 1.31+)."""
    import inspect

    from onnxruntime.quantization import quantize_static

    return "calibration_cache_path" in inspect.signature(quantize_static).parameters


class _GivenRanges:
    """Stands in for ORT's calibrator inside quantize_static: collects nothing, returns edgekit's ranges."""

    def __init__(self, ranges):
        self.ranges = ranges

    def collect_data(self, reader) -> None:
        pass

    def compute_data(self):
        return self.ranges


class _NoImages:
    """The data reader quantize_static asks for; the stand-in calibrator never reads it."""

    def get_next(self):
        return None


@contextlib.contextmanager
def ranges_given(ranges, active: bool) -> Iterator[None]:
    """On ORT < 1.31, make quantize_static use `ranges` (its module-level create_calibrator, swapped for
    the call and restored)."""
    if not active:
        yield
        return
    import importlib

    # The module, not the function of the same name that onnxruntime.quantization exports.
    ort_quantize: Any = importlib.import_module("onnxruntime.quantization.quantize")
    original = ort_quantize.create_calibrator
    ort_quantize.create_calibrator = lambda *args, **kwargs: _GivenRanges(ranges)
    try:
        yield
    finally:
        ort_quantize.create_calibrator = original


class Quantizer:
    """Pre-process + calibrate `src` once (in a scratch folder next to `work_dir`), quantize many times.
    Use as a context manager so the scratch folder is removed."""

    def __init__(self, src: Path, images: np.ndarray, cfg: PtqSettings, work_dir: Path):
        from onnxruntime.quantization.shape_inference import quant_pre_process

        self.cfg = cfg
        self.cpu = cfg.target == "cpu"
        self.op_types = CPU_OP_TYPES if self.cpu else None
        self.scratch = Path(tempfile.mkdtemp(dir=work_dir, prefix=".quantize."))
        try:
            self.pre = self.scratch / "preprocessed.onnx"  # shape-inferred, as ORT advises
            # ORT's pre-process optimizer splits HardSwish into HardSigmoid + Mul, which would leave two
            # float islands per activation; onnxsim has already folded what needs folding.
            quant_pre_process(str(src), str(self.pre), skip_symbolic_shape=True, skip_optimization=self.cpu)
            self.method, self.ranges = calibrate(self.pre, images, cfg, self.scratch, self.op_types)
            self.cache = self.scratch / "ranges.json" if takes_calibration_cache() else None
            if self.cache is not None:
                from onnxruntime.quantization.calibrate import save_tensors_data

                save_tensors_data(self.ranges, self.cache)
        except BaseException:
            self.close()
            raise

    def quantize(self, dst: Path, exclude: Iterable[str] = ()) -> None:
        """Write the Q/DQ model to `dst`; nodes named in `exclude` stay in float."""
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

        # ORT >= 1.31 reads the ranges from the calibration cache; older releases (the only ones with
        # Python 3.10 wheels, as on the Jetson image) calibrate inside quantize_static, so they are handed
        # the ranges through a calibrator that returns them.
        given = {"calibration_cache_path": str(self.cache)} if self.cache is not None else {}
        with atomic_path(dst) as tmp, ranges_given(self.ranges, self.cache is None):
            quantize_static(
                str(self.pre),
                str(tmp),
                None if self.cache is not None else _NoImages(),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QUInt8 if self.cpu else QuantType.QInt8,
                weight_type=QuantType.QInt8,
                per_channel=self.cfg.per_channel,
                calibrate_method=self.method,
                op_types_to_quantize=self.op_types,
                nodes_to_exclude=list(exclude),
                # TensorRT's explicit quantization takes int8 Q/DQ only: biases stay float for it (ORT's
                # default turns them into int32 DequantizeLinear nodes, which TensorRT's parser rejects).
                # Dedicated Q/DQ pairs for TensorRT: it cannot share one pair between several consumers
                # (the reason ORT added the option); numerically the same model.
                extra_options={
                    "ActivationSymmetric": not self.cpu,
                    "WeightSymmetric": True,
                    "QuantizeBias": self.cpu,
                    "DedicatedQDQPair": not self.cpu,
                },
                **given,
            )

    def info(self) -> dict:
        return {
            "activation_type": "uint8" if self.cpu else "int8 (symmetric)",
            "bias": "int32" if self.cpu else "float",
            "weight_type": "int8 per-channel" if self.cfg.per_channel else "int8 per-tensor",
        }

    def close(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
