"""PyTorch to ONNX as a library (edgekit.export.onnx_file): export, metadata stamp, atomic save, and the
parity check against PyTorch. The export stage, QAT, the latency probes and the benchmarks all use it."""

from __future__ import annotations

from edgekit.export.onnx_file import (
    DEFAULT_OPSET,
    ParityError,
    export_checked,
    metadata,
    parity,
    save_onnx,
    stamp,
    to_onnx,
)

__all__ = ["DEFAULT_OPSET", "ParityError", "export_checked", "metadata", "parity", "save_onnx", "stamp", "to_onnx"]
