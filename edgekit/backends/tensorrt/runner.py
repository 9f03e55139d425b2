"""Run a stamped TensorRT engine: the stamp is checked against this runtime before TensorRT sees the
file, then inputs and outputs are bound by name (the TensorRT 10/11 tensor API, execute_async_v3)."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from edgekit.backends.gpu_timing import GpuModel
from edgekit.backends.tensorrt.stamp import check_engine, runtime_identity
from edgekit.errors import EdgekitError


class TrtRunner(GpuModel):
    backend = "tensorrt"

    def __init__(self, engine_path: Path, onnx_path: Path | None = None, identity: dict | None = None, trt=None):
        self.path = Path(engine_path)
        self.stamp = check_engine(self.path, identity or runtime_identity(), onnx_path)
        if trt is None:
            trt = importlib.import_module("tensorrt")
        super().__init__()
        self.trt = trt
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        self.engine = self.runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise EdgekitError(
                f"TensorRT could not load {self.path.name} although its stamp matches: rebuild it from "
                f"{self.stamp.get('onnx')}"
            )
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1 or len(outputs) != 1:
            raise EdgekitError(
                f"{self.path.name} has {len(inputs)} inputs and {len(outputs)} outputs: edgekit runs classifiers with "
                "one of each"
            )
        self.input_name, self.output_name = inputs[0], outputs[0]
        lo, _, hi = self.engine.get_tensor_profile_shape(self.input_name, 0)
        self.min_batch, self.max_batch = int(lo[0]), int(hi[0])
        self.image_shape = tuple(int(d) for d in hi[1:])

    def _torch_dtype(self, name: str):
        return self.torch.from_numpy(np.empty(0, dtype=self.trt.nptype(self.engine.get_tensor_dtype(name)))).dtype

    def _bind(self, batch: int):
        if not self.min_batch <= batch <= self.max_batch:
            raise EdgekitError(
                f"batch {batch} is outside the engine's profile [{self.min_batch}, {self.max_batch}]: rebuild with "
                "build.min_batch/max_batch covering it"
            )
        torch = self.torch
        if not self.context.set_input_shape(self.input_name, (batch, *self.image_shape)):
            raise EdgekitError(
                f"TensorRT refused input shape {(batch, *self.image_shape)} for {self.path.name}: rebuild it with a "
                "profile that covers it"
            )
        out_shape = tuple(self.context.get_tensor_shape(self.output_name))
        d_in = torch.empty((batch, *self.image_shape), dtype=self._torch_dtype(self.input_name), device="cuda")
        d_out = torch.empty(out_shape, dtype=self._torch_dtype(self.output_name), device="cuda")
        for name, tensor in ((self.input_name, d_in), (self.output_name, d_out)):
            if not self.context.set_tensor_address(name, tensor.data_ptr()):
                raise EdgekitError(
                    f"TensorRT refused the buffer of tensor {name} of {self.path.name} (alignment?): rebuild it from "
                    f"{self.stamp.get('onnx')}"
                )
        return d_in, d_out

    def _enqueue(self, stream) -> None:
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise EdgekitError(f"TensorRT failed to run {self.path.name} (see the TensorRT messages above)")
