"""Where training runs and in which precision: device choice ("auto" | "cpu" | "cuda") and mixed
precision on CUDA (bf16 where the GPU has it, else fp16 with a GradScaler). On CPU training stays fp32:
CPU autocast would change results and is slower than fp32 for these small convolutions."""

from __future__ import annotations

import contextlib

import torch

from edgekit.errors import EdgekitError


def resolve_device(choice: str) -> torch.device:
    """ "auto" is CUDA when PyTorch sees a GPU, else CPU; "cuda" without a GPU is an error, not a fallback."""
    if choice == "cpu":
        return torch.device("cpu")
    available = torch.cuda.is_available()
    if choice == "cuda" and not available:
        raise EdgekitError(
            f"device 'cuda' was asked for but PyTorch {torch.__version__} sees no CUDA GPU: set train.device / "
            "distill.device to auto or cpu, or install a CUDA build of torch"
        )
    return torch.device("cuda" if available else "cpu")


def amp_dtype(mode: str, device_type: str, bf16_supported: bool | None = None) -> torch.dtype | None:
    """The autocast dtype for `mode` ("auto" | "off" | "bf16" | "fp16") on a device, or None for fp32.

    CPU: always None. CUDA: "auto" is bf16 when supported (same exponent range as fp32, no loss
    scaling needed), else fp16. `bf16_supported` defaults to torch.cuda.is_bf16_supported()."""
    if device_type != "cuda" or mode == "off":
        return None
    if mode == "fp16":
        return torch.float16
    if bf16_supported is None:
        bf16_supported = torch.cuda.is_bf16_supported()
    if mode == "bf16" and not bf16_supported:
        raise EdgekitError(
            "amp 'bf16' was asked for but this GPU does not support bfloat16: set train.amp / distill.amp to fp16 or "
            "auto"
        )
    return torch.bfloat16 if bf16_supported else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None):
    """torch.autocast for a mixed-precision dtype; a no-op context for fp32 (the unchanged CPU path)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, dtype: torch.dtype | None):
    """A GradScaler for fp16 only: fp16 gradients underflow without loss scaling; bf16 and fp32 need none."""
    if dtype != torch.float16:
        return None
    return torch.amp.GradScaler(device.type)


def precision_name(dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
