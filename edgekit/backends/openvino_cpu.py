"""OpenVINO's CPU plugin as a second CPU runtime beside ONNX Runtime: the x86 edge boxes users deploy to
run it, and it reads the same .onnx files (a Q/DQ int8 file becomes its own int8 graph). Imported lazily:
without the `openvino` package the runner is "unavailable", never an import error elsewhere.

One compiled model per batch size: OpenVINO compiles a static shape faster than it runs a dynamic one,
and a run only ever uses a few sizes (1, the throughput batch, the accuracy batch and its remainder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import EdgekitError

BACKEND = "openvino"


def openvino_version() -> str | None:
    """The installed OpenVINO's version, or None when it is not installed (or does not load)."""
    try:
        import openvino as ov
    except Exception:  # ImportError, or a broken native library: either way it is unavailable
        return None
    return str(ov.__version__).split("-")[0]


def available() -> bool:
    return openvino_version() is not None


def require_openvino() -> None:
    """An EdgekitError naming the fix when OpenVINO is not installed (a run whose target is openvino
    checks before it starts)."""
    if not available():
        raise EdgekitError(
            "target.platform=openvino needs OpenVINO, which is not installed here: pip install 'edgekit[openvino]' "
            "(or openvino), or use --target cpu"
        )


class OpenVinoRunner:
    def __init__(self, path: str | Path, threads: int):
        if not Path(path).is_file():
            raise EdgekitError(f"ONNX file {path} does not exist: check the path")
        require_openvino()
        import openvino as ov

        from edgekit.envinfo import usable_cores

        self.path = Path(path)
        self.threads = threads or usable_cores()
        self.backend = BACKEND
        self._core = ov.Core()
        try:
            self._model = self._core.read_model(str(path))
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses for files it cannot read
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise EdgekitError(f"OpenVINO cannot read {path} ({first}): give a valid .onnx file") from None
        self._input = self._model.inputs[0].get_any_name()
        # f32 precision asked for explicitly: on CPUs with bf16 units OpenVINO would otherwise run fp32
        # files in bf16 and the row would not measure the file that ships. One stream, `threads` threads:
        # the same latency-oriented set-up as the ONNX Runtime rows.
        self._config: dict[str, Any] = {
            "INFERENCE_NUM_THREADS": self.threads,
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32",
        }
        self._compiled: dict[tuple[int, ...], Any] = {}

    def _compiled_for(self, shape: tuple[int, ...]):
        if shape not in self._compiled:
            model = self._model.clone()
            model.reshape({self._input: list(shape)})
            self._compiled[shape] = self._core.compile_model(model, "CPU", self._config).create_infer_request()
        return self._compiled[shape]

    def run(self, x: np.ndarray) -> np.ndarray:
        request = self._compiled_for(tuple(x.shape))
        request.infer({0: x})
        return np.array(request.get_output_tensor(0).data, copy=True)

    def kernels(self, batch: int = 1) -> dict[str, int]:
        """The compiled graph's Convolution/FullyConnected/MatMul nodes by the precision OpenVINO runs them
        in (its runtime model reports it per node: u8/i8 = integer kernels, f32/bf16/f16 = float), in the
        same form as OrtRunner.kernels."""
        precisions = self.runtime_precisions(batch)
        integer = sum(n for p, n in precisions.items() if p in ("u8", "i8"))
        return {"int8": integer, "float": sum(precisions.values()) - integer}

    def runtime_precisions(self, batch: int = 1) -> dict[str, int]:
        """How many of the compiled graph's Convolution/FullyConnected/MatMul nodes run in each precision."""
        dims = self._model.inputs[0].get_partial_shape()
        request = self._compiled_for((batch, *(dims[i].get_length() for i in range(1, len(dims)))))
        runtime = request.get_compiled_model().get_runtime_model()
        counts: dict[str, int] = {}
        for op in runtime.get_ordered_ops():
            info = op.get_rt_info()
            if info["layerType"].astype(str) in ("Convolution", "FullyConnected", "MatMul"):
                precision = info["runtimePrecision"].astype(str)
                counts[precision] = counts.get(precision, 0) + 1
        return counts
