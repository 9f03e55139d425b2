"""The stamp beside every engine (model.int8.engine.json): what it was built with and on.

A TensorRT engine is only valid for the TensorRT version and the GPU it was built on (and, on Jetson,
the L4T release that ships that TensorRT). Loading one elsewhere fails deep inside TensorRT or, worse,
runs with kernels tuned for another chip, so edgekit compares the stamp with the runtime first and
refuses with the difference and the fix."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from edgekit.errors import EdgekitError
from edgekit.fileio import atomic_write_json, sha256

FORMAT = "edgekit-tensorrt-engine/1"
# What must match between build and run; the GPU name catches two chips with the same compute capability.
IDENTITY_KEYS = ("tensorrt", "gpu", "compute_capability", "l4t")


def stamp_path(engine: Path) -> Path:
    return engine.with_name(engine.name + ".json")


def runtime_identity() -> dict:
    """TensorRT version, GPU name and compute capability, L4T release (None off Jetson). Needs TensorRT
    and a CUDA device; raises EdgekitError naming what is missing."""
    from edgekit.backends.tensorrt import status
    from edgekit.jetson import l4t_release

    ok, detail = status()
    if not ok:
        raise EdgekitError(
            f"tensorrt: unavailable ({detail}): install TensorRT's Python package (see docker/README.md) or use the "
            "onnxruntime backend"
        )
    import torch

    if not torch.cuda.is_available():
        raise EdgekitError(
            f"TensorRT {detail} is installed but PyTorch {torch.__version__} sees no CUDA GPU: run on the GPU machine, "
            "with a CUDA build of torch"
        )
    major, minor = torch.cuda.get_device_capability(0)
    return {
        "tensorrt": detail,
        "gpu": torch.cuda.get_device_name(0),
        "compute_capability": f"{major}.{minor}",
        "l4t": l4t_release(),
    }


def make_stamp(engine: Path, onnx: Path, identity: dict, options: dict, extra: dict | None = None) -> dict:
    from edgekit.version import __version__

    return {
        "format": FORMAT,
        **{k: identity.get(k) for k in IDENTITY_KEYS},
        "onnx": onnx.name,
        "onnx_sha256": sha256(onnx),
        "engine_sha256": sha256(engine),
        "options": options,
        "built_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "edgekit": __version__,
        **(extra or {}),
    }


def write_stamp(engine: Path, stamp: dict) -> Path:
    path = stamp_path(engine)
    atomic_write_json(path, stamp)
    return path


def read_stamp(engine: Path) -> dict:
    path = stamp_path(engine)
    rebuild = "rebuild it from its ONNX file with `edgekit build <model.onnx>` on this machine"
    if not path.is_file():
        raise EdgekitError(
            f"engine {engine} has no stamp {path.name}: edgekit cannot tell what it was built for; {rebuild}"
        )
    try:
        stamp = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise EdgekitError(f"engine stamp {path} is not valid JSON: {rebuild}") from None
    if not isinstance(stamp, dict) or stamp.get("format") != FORMAT:
        raise EdgekitError(f"engine stamp {path} is not an edgekit stamp ({FORMAT}): {rebuild}")
    return stamp


def differences(stamp: dict, identity: dict) -> list[str]:
    """Human-readable differences between where an engine was built and where it would run."""
    names = {"tensorrt": "TensorRT", "gpu": "GPU", "compute_capability": "compute capability", "l4t": "L4T release"}
    return [
        f"{names[k]} {stamp.get(k)} (built) vs {identity.get(k)} (here)"
        for k in IDENTITY_KEYS
        if stamp.get(k) != identity.get(k)
    ]


def check_engine(engine: Path, identity: dict, onnx: Path | None = None) -> dict:
    """The engine's stamp, after checking it matches the runtime, the engine file itself and (when
    given) the ONNX file it claims to come from. Raises EdgekitError with what differs and the fix."""
    if not engine.is_file():
        raise EdgekitError(f"engine {engine} does not exist: build it with `edgekit build <model.onnx>`")
    stamp = read_stamp(engine)
    source = stamp.get("onnx", "its ONNX file")
    diff = differences(stamp, identity)
    if diff:
        raise EdgekitError(
            f"engine {engine.name} was built for another runtime ({'; '.join(diff)}): "
            f"rebuild it from {source} on this machine with `edgekit build {source}`"
        )
    if sha256(engine) != stamp.get("engine_sha256"):
        raise EdgekitError(
            f"engine {engine.name} does not match the hash in its stamp (changed or truncated since it was built): "
            f"rebuild it from {source}"
        )
    if onnx is not None and onnx.is_file() and sha256(onnx) != stamp.get("onnx_sha256"):
        raise EdgekitError(
            f"engine {engine.name} was built from another version of {onnx.name} (hash differs): rebuild it from "
            f"{onnx.name}"
        )
    return stamp
