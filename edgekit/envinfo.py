"""Versions and hardware that a latency figure depends on."""
from __future__ import annotations

import os
import platform
from importlib import metadata


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unavailable (not installed)"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def tensorrt_status() -> str:
    try:
        import tensorrt  # noqa: F401  (optional, GPU only)
    except Exception as exc:  # any import failure means unavailable
        return f"unavailable ({exc.__class__.__name__}: {str(exc).splitlines()[0][:80] if str(exc) else 'not installed'})"
    return _version("tensorrt")


def collect(threads: int | None = None) -> dict:
    import torch

    from edgekit import __version__

    return {
        "edgekit": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if torch.cuda.is_available() else "unavailable (no CUDA device or CPU build of torch)",
        "onnx": _version("onnx"),
        "onnxruntime": _version("onnxruntime"),
        "torch_pruning": _version("torch-pruning"),
        "onnxsim": _version("onnxsim"),
        "tensorrt": tensorrt_status(),
        "cpu": cpu_model(),
        "cpu_cores": len(os.sched_getaffinity(0)),
        "threads": threads,
        "platform": platform.platform(),
    }
