"""build: TensorRT engines from the run's ONNX files, built on this machine (the one that will run
them), each stamped beside it. Only for TensorRT targets (`target.platform` tensorrt or jetson).

`enabled: auto` builds when the target is TensorRT and TensorRT and a CUDA GPU are here, and otherwise
records why not ("tensorrt: unavailable (...)") so the report says it; `on` makes their absence an
error; `off` never builds. `sources` lists the ONNX roles to build, when the run has them."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from edgekit.artifact import ENGINE_OF, Artifact, Role
from edgekit.backends.tensorrt.options import BuildOptions, engine_path_for
from edgekit.errors import EdgekitError
from edgekit.stages.base import Stage, register
from edgekit.stages.context import Context
from edgekit.target import TENSORRT_TARGETS

log = logging.getLogger(__name__)


@dataclass
class Config(BuildOptions):
    """`enabled`: auto, on or off (see the module doc). `sources`: ONNX roles of the run to build
    (int8_onnx, fp16_onnx, onnx). The other keys are the engine build options
    (edgekit.backends.tensorrt.options.BuildOptions)."""

    enabled: Literal["auto", "on", "off"] = "auto"
    sources: list = field(default_factory=lambda: ["int8_onnx", "fp16_onnx", "onnx"])

    def __post_init__(self):
        super().__post_init__()
        allowed = [r.value for r in ENGINE_OF]
        for name in self.sources:
            if name not in allowed:
                raise EdgekitError(f"build.sources names {name!r}: use ONNX roles from {', '.join(allowed)}")


def skip(art: Artifact, cfg: Config, ctx: Context) -> str | None:
    from edgekit.backends.tensorrt import status

    if cfg.enabled == "off":
        return "build.enabled is off"
    if cfg.enabled == "on":
        return None
    target = ctx.recipe.target.platform
    if target not in TENSORRT_TARGETS:
        return f"target is {target} (use --target tensorrt or jetson to build TensorRT engines)"
    ok, detail = status()
    if not ok:
        return f"tensorrt: unavailable ({detail})"
    import torch

    if not torch.cuda.is_available():
        return "tensorrt: unavailable (no CUDA GPU visible to PyTorch)"
    return None


def run(art: Artifact, cfg: Config, ctx: Context) -> dict:
    from edgekit.backends.tensorrt.builder import build_engine
    from edgekit.backends.tensorrt.stamp import runtime_identity

    identity = runtime_identity()  # raises with the reason when enabled=on and TensorRT or the GPU is missing
    built = {}
    for source_role in (Role(s) for s in cfg.sources):
        entry = art.entries.get(source_role)
        if entry is None:
            continue
        engine = engine_path_for(entry.path)
        log.info(f"build: {entry.name} -> {engine.name} (TensorRT {identity['tensorrt']} on {identity['gpu']})")
        info = build_engine(entry.path, engine, cfg, identity)
        precision = "int8" if info["qdq"] else ("fp16" if entry.precision == "fp16" or cfg.fp16 else "fp32")
        art.add(ENGINE_OF[source_role], engine, entry.params, entry.macs, source=source_role, precision=precision)
        built[engine.name] = info
    return {
        "tensorrt": identity["tensorrt"],
        "gpu": identity["gpu"],
        "compute_capability": identity["compute_capability"],
        "l4t": identity["l4t"],
        "engines": built,
    }


STAGE = register(
    Stage(
        name="build",
        section="build",
        config=Config,
        run=run,
        skip=skip,
        consumes=(Role.INT8_ONNX, Role.FP16_ONNX, Role.ONNX),
        produces=(Role.INT8_ENGINE, Role.FP16_ENGINE, Role.ENGINE),
    )
)
