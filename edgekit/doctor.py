"""`edgekit doctor`: everything a reproducible edge latency figure depends on, in one place: versions,
execution providers, GPU, CPU, OS, and on a Jetson the L4T release, power mode and clock locking.
Nothing is required: what is missing is reported as 'unavailable (reason)' and the command still
succeeds, because its job is to say what is missing."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import edgekit.envinfo as envinfo
import edgekit.jetson as jetson


def _providers() -> list[str] | str:
    try:
        import onnxruntime
    except Exception as exc:  # not installed, or a broken wheel
        return f"unavailable ({exc.__class__.__name__}: {str(exc).strip()[:100]})"
    return onnxruntime.get_available_providers()


def collect(root: str | Path = "/", run: jetson.Runner = jetson.run_command) -> dict:
    """The doctor's facts as a JSON-ready dict. `root` and `run` exist for tests (fake /etc, /proc,
    /sys and commands)."""
    info = envinfo.collect(root=root)
    info.pop("threads")  # a property of a run, not of the machine
    jet = jetson.probe(root, run)
    info.update(
        {
            "onnxruntime_providers": _providers(),
            "cpu_cores_total": os.cpu_count(),
            "os": envinfo.os_name(root),
            "machine": platform.machine(),
            "jetson": jet,
            "warnings": jetson.warnings(jet),
        }
    )
    return info


def format_text(info: dict) -> str:
    providers = info["onnxruntime_providers"]
    lines = [
        f"edgekit: {info['edgekit']}",
        f"python: {info['python']}",
        f"torch: {info['torch']}",
        f"cuda: {info['cuda']}",
        f"cudnn: {info['cudnn']}",
        f"onnx: {info['onnx']}",
        f"onnxruntime: {info['onnxruntime']} (providers: "
        f"{', '.join(providers) if isinstance(providers, list) else providers})",
        f"onnxsim: {info['onnxsim']}",
        f"torch-pruning: {info['torch_pruning']}",
        f"tensorrt: {info['tensorrt']}",
        f"openvino: {info['openvino']}",
    ]
    if info["gpus"]:
        lines += [
            f"gpu {i}: {g['name']}, compute capability {g['compute_capability']}, {g['memory_gib']} GiB"
            + (f", driver {g['driver']}" if g["driver"] else "")
            for i, g in enumerate(info["gpus"])
        ]
    else:
        lines.append(f"gpu: {info['gpu']}")
    lines += [
        f"cpu: {info['cpu']}, {info['cpu_cores']} cores usable of {info['cpu_cores_total']}",
        f"cpu features: {info['cpu_features']}",
        *(f"cpu {kind} path: {what}" for kind, what in envinfo.simd_paths(info["cpu_features"]).items()),
        f"os: {info['os']} ({info['platform']})",
    ]
    jet = info["jetson"]
    if jet:
        mode = jet["power_mode"] + (f" (mode {jet['power_mode_id']})" if jet["power_mode_id"] is not None else "")
        lines += [
            f"jetson: {jet['model']}",
            f"l4t: {jet['l4t']} (JetPack {jet['jetpack']})",
            f"power mode: {mode}",
            f"cpu clocks: {jet['cpu_clocks']}",
            f"gpu clocks: {jet['gpu_clocks']}",
        ]
    else:
        lines.append("jetson: no (no /etc/nv_tegra_release, no NVIDIA device-tree model)")
    lines += [f"WARNING: {w}" for w in info["warnings"]]
    return "\n".join(lines)
