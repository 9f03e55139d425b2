"""build: TensorRT engines from the run's ONNX files, built on this machine (the one that will run
them), each stamped beside it. Only for TensorRT targets (`--target tensorrt` or `jetson`).

`enabled: auto` builds when the target is TensorRT and TensorRT and a CUDA GPU are here, and otherwise
records why not ("tensorrt: unavailable (...)") so the report says it; `on` makes their absence an
error; `off` never builds. `files` lists the ONNX files to build, in the run folder, when present."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from edgekit.artifact import Artifact, ModelEntry
from edgekit.backends.tensorrt.options import BuildOptions, engine_path_for

NAME = "build"
SECTION = "build"
TENSORRT_TARGETS = ("tensorrt", "jetson")


@dataclass
class Config(BuildOptions):
    """`enabled`: auto, on or off (see the module doc). `files`: ONNX files of the run to build. The
    other keys are the engine build options (edgekit.backends.tensorrt.options.BuildOptions)."""

    enabled: Literal["auto", "on", "off"] = "auto"
    files: list = field(default_factory=lambda: ["model.int8.onnx", "model.fp16.onnx", "model.onnx"])


def skip(art, cfg: Config, ctx) -> str | None:
    from edgekit.backends.tensorrt import status

    if cfg.enabled == "off":
        return "build.enabled is off"
    if cfg.enabled == "on":
        return None
    target = ctx.recipe.quantize.target
    if target not in TENSORRT_TARGETS:
        return f"target is {target} (use --target tensorrt or jetson to build TensorRT engines)"
    ok, detail = status()
    if not ok:
        return f"tensorrt: unavailable ({detail})"
    import torch

    if not torch.cuda.is_available():
        return "tensorrt: unavailable (no CUDA GPU visible to PyTorch)"
    return None


def run(art: Artifact, cfg: Config, ctx) -> dict:
    from edgekit.backends.tensorrt.builder import build_engine
    from edgekit.backends.tensorrt.stamp import runtime_identity

    identity = runtime_identity()  # raises with the reason when enabled=on and TensorRT or the GPU is missing
    built = {}
    for name in cfg.files:
        entry = art.entries.get(name)
        if entry is None or entry.format != "onnx":
            continue
        engine = engine_path_for(entry.path)
        print(f"build: {name} -> {engine.name} (TensorRT {identity['tensorrt']} on {identity['gpu']})", flush=True)
        info = build_engine(entry.path, engine, cfg, identity)
        precision = "int8" if info["qdq"] else ("fp16" if entry.precision == "fp16" or cfg.fp16 else "fp32")
        art.add(ModelEntry(engine.name, "engine", precision, entry.params, entry.macs, engine))
        built[engine.name] = info
    return {"tensorrt": identity["tensorrt"], "gpu": identity["gpu"], "compute_capability": identity["compute_capability"],
            "l4t": identity["l4t"], "engines": built}
