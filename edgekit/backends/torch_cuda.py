"""PyTorch on a CUDA GPU, fp32 or fp16, eager or torch.compile: GPU numbers without TensorRT."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from torch import nn

from edgekit.backends.gpu_timing import GpuModel
from edgekit.errors import EdgekitError


class TorchCudaRunner(GpuModel):
    backend = "torch-cuda"

    def __init__(self, module: nn.Module, image_shape: tuple[int, ...], precision: str = "fp32", compile: bool = False):
        import torch

        if not torch.cuda.is_available():
            raise EdgekitError(
                f"PyTorch {torch.__version__} sees no CUDA GPU: the torch-cuda backend needs one (use the CPU backends)"
            )
        super().__init__()
        self.dtype = {"fp32": torch.float32, "fp16": torch.float16}[precision]
        self.precision = precision
        model: Callable[..., Any] = copy.deepcopy(module).eval().to("cuda", self.dtype)  # or its torch.compile
        self.mode = "eager"
        if compile:
            # torch.compile needs a working Triton/C++ toolchain; where it fails the runner stays eager and says so.
            try:
                compiled = torch.compile(model)
                with torch.inference_mode():
                    compiled(torch.zeros(1, *image_shape, device="cuda", dtype=self.dtype))
                model, self.mode = compiled, "compile"
            except Exception as exc:
                self.mode = f"eager (torch.compile failed: {exc.__class__.__name__})"
        self.model = model
        self.image_shape = tuple(image_shape)
        self.backend = f"torch-cuda-{self.mode.split(' ')[0]}"

    def _bind(self, batch: int):
        torch = self.torch
        d_in = torch.empty((batch, *self.image_shape), dtype=self.dtype, device="cuda")
        with torch.inference_mode():
            d_out = self.model(d_in).contiguous()  # shape and dtype of the output; refilled by _enqueue
        return d_in, d_out

    def _enqueue(self, stream) -> None:
        torch = self.torch
        with torch.inference_mode(), torch.cuda.stream(stream):
            self.d_out.copy_(self.model(self.d_in))
