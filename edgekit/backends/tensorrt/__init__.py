"""TensorRT backend: engine builder, stamp and runner. Nothing here imports tensorrt at module import
time: `status()` says whether it can be used and why not, and the CPU path never needs it."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def status() -> tuple[bool, str]:
    """(available, version or the reason it is not). Any import failure means unavailable: a missing
    package, a PyPI stub whose real wheel was never downloaded, or a libnvinfer that fails to load."""
    try:
        import tensorrt as trt
    except Exception as exc:
        text = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else "not installed"
        return False, f"{exc.__class__.__name__}: {text}"
    version = getattr(trt, "__version__", None)
    if not version:
        return False, "the tensorrt module has no __version__ (a placeholder package?): install TensorRT's Python wheel"
    return True, version


def status_line() -> str:
    """One line for doctor and reports: '10.3.0' or 'unavailable (reason)'."""
    ok, detail = status()
    return detail if ok else f"unavailable ({detail})"
