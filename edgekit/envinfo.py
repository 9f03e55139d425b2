"""Versions and hardware that a latency figure depends on: report.json's `env` and `edgekit doctor`.
Nothing here fails: whatever cannot be read becomes 'unavailable (reason)'."""

from __future__ import annotations

import os
import platform
import re
from importlib import metadata
from pathlib import Path

from edgekit.fileio import read_under

# ARM /proc/cpuinfo has no "model name", only implementer and part numbers; these are the Jetson cores
# (A57: Nano/TX1/TX2, Carmel: Xavier, A78AE: Orin) and common ARM servers.
_ARM_CORES = {
    ("0x41", "0xd07"): "ARM Cortex-A57",
    ("0x41", "0xd08"): "ARM Cortex-A72",
    ("0x4e", "0x004"): "NVIDIA Carmel",
    ("0x41", "0xd42"): "ARM Cortex-A78AE",
    ("0x41", "0xd0c"): "ARM Neoverse-N1",
    ("0x41", "0xd4f"): "ARM Neoverse-V2",
}


def _version(*dists: str) -> str:
    """Version of the first installed distribution (e.g. onnxruntime or onnxruntime-gpu)."""
    for dist in dists:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return "unavailable (not installed)"


def _read(root: str | Path, path: str) -> str:
    return read_under(root, path) or ""


def cpu_model(root: str | Path = "/") -> str:
    fields: dict[str, str] = {}
    for line in _read(root, "/proc/cpuinfo").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    if fields.get("model name"):
        return fields["model name"]
    arm = (fields.get("CPU implementer", "").lower(), fields.get("CPU part", "").lower())
    if all(arm):
        return _ARM_CORES.get(arm, f"ARM CPU (implementer {arm[0]}, part {arm[1]})")
    return platform.processor() or platform.machine()


# The instruction-set features int8 and fp32 kernels dispatch on (ONNX Runtime's MLAS, oneDNN, OpenVINO):
# the same model's int8/fp32 speed ratio differs between an AVX2-only and an AVX-512 VNNI / AMX machine,
# so every latency figure carries them. x86 names, then ARM's (asimddp = dot product, i8mm = int8 matmul).
CPU_FEATURES = (
    "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16",
    "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16", "asimd", "asimddp", "i8mm", "sve", "fphp", "bf16",
)  # fmt: skip


def cpu_features(root: str | Path = "/") -> str:
    """The CPU_FEATURES this machine has, from /proc/cpuinfo's flags (x86) or Features (ARM), in that order;
    'none of ...' or 'unavailable' when there are none or no cpuinfo."""
    text = _read(root, "/proc/cpuinfo")
    m = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", text, re.MULTILINE)
    if not m:
        return "unavailable (no /proc/cpuinfo flags)"
    have = set(m[1].split())
    found = [f for f in CPU_FEATURES if f in have]
    return " ".join(found) if found else "none of the SIMD features edgekit lists"


# The best multiply-accumulate instruction path for each precision, first match wins (x86, then ARM).
FP32_PATHS = (
    ("avx512f", "AVX-512 FMA (16 fp32 lanes)"),
    ("fma", "AVX2 FMA (8 fp32 lanes)"),
    ("avx", "AVX without FMA"),
    ("asimd", "NEON FMA (4 fp32 lanes)"),
)
INT8_PATHS = (
    ("amx_int8", "AMX-INT8 tiles"),
    ("avx512_vnni", "AVX-512 VNNI (vpdpbusd, u8 x s8 into int32)"),
    ("avx_vnni", "AVX-VNNI (vpdpbusd on 256-bit)"),
    ("avx2", "AVX2 without VNNI (vpmaddubsw: u8 x s8 pairs saturate at int16)"),
    ("i8mm", "ARM i8mm (smmla)"),
    ("asimddp", "ARM dot product (sdot/udot)"),
)


def simd_paths(features: str) -> dict[str, str]:
    """{"fp32": ..., "int8": ...}: the instruction path each precision's kernels take on this CPU, from
    cpu_features(). What decides the int8/fp32 speed ratio more than anything a model does."""
    have = set(features.split())

    def best(paths: tuple[tuple[str, str], ...]) -> str:
        return next((what for flag, what in paths if flag in have), "scalar or unknown")

    return {"fp32": best(FP32_PATHS), "int8": best(INT8_PATHS)}


def os_name(root: str | Path = "/") -> str:
    m = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', _read(root, "/etc/os-release"), re.MULTILINE)
    return m[1] if m else platform.system()


def nvidia_driver(root: str | Path = "/") -> str | None:
    """Kernel driver version from /proc/driver/nvidia/version: cheaper than NVML and needs no package."""
    m = re.search(r"Kernel Module.*?\s(\d+\.\d+(?:\.\d+)?)\s", _read(root, "/proc/driver/nvidia/version"))
    return m[1] if m else None


def _cudnn(version: int | None) -> str | None:
    if not version:
        return None
    # cuDNN 9 encodes major*10000 + minor*100 + patch; cuDNN 8 encodes major*1000 + minor*100 + patch.
    major, rest = divmod(version, 10000 if version >= 90000 else 1000)
    return f"{major}.{rest // 100}.{rest % 100}"


def cuda(root: str | Path = "/") -> dict:
    """CUDA, cuDNN and GPUs as torch sees them. The CUDA driver is touched only once torch reports a
    device, so a machine without one answers 'unavailable (reason)' instead of failing."""
    import torch

    if not torch.cuda.is_available():
        if torch.version.cuda:
            reason = (
                f"no CUDA device; torch built for CUDA {torch.version.cuda}: check the driver and CUDA_VISIBLE_DEVICES"
            )
        elif getattr(torch.version, "hip", None):
            reason = f"no GPU device; torch built for ROCm {torch.version.hip}"
        else:
            reason = "CPU build of torch"
        gone = f"unavailable ({reason})"
        return {"cuda": gone, "cudnn": gone, "gpu": gone, "gpus": []}
    try:
        driver = nvidia_driver(root)
        gpus = []
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            gpus.append(
                {
                    "name": p.name,
                    "compute_capability": f"{p.major}.{p.minor}",
                    "memory_gib": round(p.total_memory / 2**30, 1),
                    "driver": driver,
                }
            )
        cudnn = _cudnn(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else None
    except Exception as exc:  # a broken driver or library: say so, do not fail the report
        first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else "CUDA error"
        gone = f"unavailable ({exc.__class__.__name__}: {first})"
        return {"cuda": torch.version.cuda or gone, "cudnn": gone, "gpu": gone, "gpus": []}
    return {
        "cuda": torch.version.cuda or f"unavailable (ROCm build of torch, HIP {torch.version.hip})",
        "cudnn": cudnn or "unavailable (torch has no cuDNN)",
        "gpu": "; ".join(f"{g['name']} (compute {g['compute_capability']}, {g['memory_gib']} GiB)" for g in gpus),
        "gpus": gpus,
    }


def usable_cores() -> int:
    """Cores this process may run on (its affinity), which is what thread counts should follow."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def collect(threads: int | None = None, root: str | Path = "/") -> dict:
    import torch

    import edgekit.jetson as jetson
    from edgekit.backends import tensorrt
    from edgekit.version import __version__

    gpu = cuda(root)
    return {
        "edgekit": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": gpu["cuda"],
        "cudnn": gpu["cudnn"],
        "onnx": _version("onnx"),
        "onnxruntime": _version("onnxruntime", "onnxruntime-gpu"),
        "torch_pruning": _version("torch-pruning"),
        "onnxsim": _version("onnxsim", "onnx-simplifier"),
        "tensorrt": tensorrt.status_line(),
        "openvino": _version("openvino"),
        "gpu": gpu["gpu"],
        "gpus": gpu["gpus"],
        "cpu": cpu_model(root),
        "cpu_features": cpu_features(root),
        "cpu_cores": usable_cores(),
        "threads": threads,
        "platform": platform.platform(),
        # On a Jetson: module, L4T, power mode and clock lock state, which a latency figure depends on.
        "jetson": jetson.probe(root) or "no",
    }
