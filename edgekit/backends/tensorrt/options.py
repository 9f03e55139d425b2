"""Engine build options: a strict config (it is also the recipe's `build` section) and what each one
means for TensorRT 10 (weak typing still exists) and TensorRT 11 (strong typing only)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edgekit.config import ranged
from edgekit.errors import EdgekitError
from edgekit.paths import cache_root


def timing_cache_path(setting: str, identity: dict) -> Path | None:
    """ "auto": one cache per TensorRT version and GPU under $EDGEKIT_CACHE (a timing cache from another
    version or GPU is useless and TensorRT rejects it); "": none; else the path given."""
    if not setting:
        return None
    if setting != "auto":
        return Path(setting)
    root = cache_root("tensorrt")
    key = re.sub(
        r"[^A-Za-z0-9_.-]+",
        "_",
        f"{identity.get('tensorrt')}-{identity.get('gpu')}-sm{identity.get('compute_capability')}",
    )
    return root / f"timing-{key}.cache"


@dataclass
class BuildOptions:
    """`min_batch`/`opt_batch`/`max_batch`: the optimization profile of the dynamic batch axis (TensorRT
    tunes kernels for `opt_batch`). `workspace_mb`: limit of the builder's scratch memory pool.
    `fp16`: also allow fp16 kernels for layers that are float in the ONNX file (TensorRT 10 only: its
    FP16 builder flag; TensorRT 11 takes precision from the file alone, so there give a model.fp16.onnx).
    `timing_cache`: file reused across builds so repeated builds skip kernel timing ("auto" = one per
    TensorRT version and GPU in edgekit's cache folder, "" = none).
    `optimization_level`: builder optimization level 0-5 (TensorRT's default is 3)."""

    min_batch: int = ranged(1, 1, 65536)
    opt_batch: int = ranged(8, 1, 65536)
    max_batch: int = ranged(32, 1, 65536)
    workspace_mb: int = ranged(1024, 1, 1 << 20)
    fp16: bool = False
    timing_cache: str = "auto"
    optimization_level: int = ranged(3, 0, 5)

    def __post_init__(self):
        if not self.min_batch <= self.opt_batch <= self.max_batch:
            raise EdgekitError(
                f"build batch profile min {self.min_batch} / opt {self.opt_batch} / max {self.max_batch} is not "
                "ordered: "
                "set min_batch <= opt_batch <= max_batch"
            )

    def profile(self, image_shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """(min, opt, max) input shapes for an image of shape (C, H, W)."""
        return tuple((b, *image_shape) for b in (self.min_batch, self.opt_batch, self.max_batch))  # type: ignore[return-value]

    def stamped(self) -> dict:
        """The options that change the engine (the timing cache only changes how long a build takes)."""
        return {
            "min_batch": self.min_batch,
            "opt_batch": self.opt_batch,
            "max_batch": self.max_batch,
            "workspace_mb": self.workspace_mb,
            "fp16": self.fp16,
            "optimization_level": self.optimization_level,
        }


Typing = Literal["weak", "strong"]


def network_typing(has_weak_typing: bool, options: BuildOptions, onnx_name: str) -> Typing:
    """Strong typing (precision from the file: Q/DQ for int8, fp16 tensors for fp16) wherever it is
    possible. TensorRT 10 keeps weak typing only for the fp16 flag; TensorRT 11 has no flags at all."""
    if not options.fp16:
        return "strong"
    if not has_weak_typing:
        raise EdgekitError(
            f"build.fp16 asks for TensorRT's FP16 flag, which TensorRT 11 removed: build an fp16 ONNX file instead "
            f"(--fp16 writes model.fp16.onnx) rather than {onnx_name} with build.fp16"
        )
    return "weak"


def engine_path_for(onnx_path: Path) -> Path:
    """model.int8.onnx -> model.int8.engine (beside it, with model.int8.engine.json as its stamp)."""
    return onnx_path.with_suffix(".engine")


def device_engine_path(onnx_path: Path, identity: dict) -> Path:
    """model.int8.onnx -> model.int8.nvidia-h200-trt10.7.0.engine: where an engine for this runtime goes
    when model.int8.engine already holds one built for another (which is kept)."""
    slug = re.sub(r"[^a-z0-9.]+", "-", f"{identity.get('gpu')}-trt{identity.get('tensorrt')}".lower()).strip("-")
    return onnx_path.with_name(f"{onnx_path.stem}.{slug}.engine")
