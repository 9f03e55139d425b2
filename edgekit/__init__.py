"""edgekit: compress a CNN image classifier for an edge device, and measure every step.

    import edgekit
    run = edgekit.compress(model, train=(images, labels), prune=0.3, int8=True)

The Python API (edgekit.api) and the zoo are loaded on first use, so `import edgekit` stays light: the
command line's `--help` must not wait for torch."""

from typing import Any

from edgekit.version import __version__

API = (
    "Run",
    "benchmark",
    "compress",
    "distill_student",
    "evaluate",
    "export_onnx",
    "prune",
    "quantize_onnx",
    "run_recipe",
)
__all__ = ["__version__", "create_model", "list_models", *API]


def __getattr__(name: str) -> Any:
    if name in API:
        from edgekit import api

        return getattr(api, name)
    if name in ("create_model", "list_models"):
        from edgekit import zoo

        return getattr(zoo, name)
    raise AttributeError(f"module 'edgekit' has no attribute {name!r}")
