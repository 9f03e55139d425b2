"""ONNX Runtime on the CPU execution provider."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError


def load_session(path: str | Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types for bad files
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise EdgekitError(f"{path} is not a loadable ONNX model ({first}): give a valid .onnx file, e.g. one from an edgekit run folder") from None


class OrtRunner:
    backend = "onnxruntime"

    def __init__(self, path: str | Path, threads: int):
        if not Path(path).is_file():
            raise EdgekitError(f"ONNX file {path} does not exist: check the path")
        self.path = Path(path)
        self.threads = threads
        self.session = load_session(path, threads)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_shape = inp.shape  # e.g. ["batch", 1, 28, 28]

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x})[0]

    def metadata(self) -> dict[str, str]:
        return dict(self.session.get_modelmeta().custom_metadata_map)
