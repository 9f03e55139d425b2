"""validate: accuracy (top-1/top-5 on the validation split) and latency/throughput of every model the
run produced, all on the same inputs: torch models in PyTorch on the CPU, ONNX files in ONNX Runtime,
TensorRT engines through their stamped runner. Where a CUDA GPU is visible, the final torch model is
also run on it (fp32 and fp16; torch.compile too when asked), and every GPU row gets trtexec-style
figures: end-to-end versus GPU compute time, copies, throughput (edgekit.backends.gpu_timing)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import numpy as np

from edgekit.artifact import Artifact, ModelEntry
from edgekit.backends import evaluate, measure_interleaved, throughput_of
from edgekit.metrics import latency_stats
from edgekit.config import ranged
from edgekit.data.transforms import normalize
from edgekit.envinfo import usable_cores
from edgekit.fileio import size_mb
from edgekit.stages.build import TENSORRT_TARGETS

NAME = "validate"
SECTION = "validate"


@dataclass
class Config:
    """`threads`: intra-op CPU threads for every runner (0 = all cores). One by default: edge
    deployments often pin inference to one core, and on a 2-core machine two threads made timings
    bimodal (0.3 vs 0.7 ms for the same model) whenever anything else woke up; one thread left a core
    for that noise and gave repeatable figures. Latency at batch 1: `warmup_s` of
    warm-up, then at least `min_runs` runs and `min_seconds` per model, timed in `rounds` slices that
    alternate between the models so drift does not favour one. Throughput at `batch`. `val_images`:
    limit the accuracy set (0 = the whole validation split). `gpu`: auto adds PyTorch-on-CUDA rows
    when a GPU is visible, and ONNX Runtime CUDA (and, for a TensorRT target, TensorRT) provider rows
    when the installed onnxruntime has them; `torch_compile` adds torch.compile rows; `cuda_graph` replays GPU rows'
    inference from a CUDA graph in their GPU timing."""

    threads: int = ranged(1, 0, 1024)
    batch: int = ranged(32, 1, 4096)
    warmup_s: float = ranged(0.5, 0.0, 60.0)
    min_runs: int = ranged(100, 1, 1_000_000)
    min_seconds: float = ranged(2.0, 0.0, 600.0)
    rounds: int = ranged(5, 1, 100)
    val_images: int = ranged(0, 0, 10_000_000)
    gpu: Literal["auto", "off"] = "auto"
    torch_compile: bool = False
    cuda_graph: bool = False


def skip(art, cfg: Config, ctx) -> str | None:
    return None


def threads_of(cfg: Config) -> int:
    return cfg.threads or usable_cores()


def val_arrays(ctx, limit: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The first `limit` validation images (0 = all), normalized as the models expect, and their labels."""
    val = ctx.data.val
    n = limit or len(val)
    return normalize(val.images[:n], ctx.data.mean, ctx.data.std).numpy(), val.labels[:n].numpy()


def runner_for(entry: ModelEntry, threads: int):
    if entry.format == "torch":
        from edgekit.backends.torch_cpu import TorchRunner

        return TorchRunner(entry.module, threads)
    if entry.format == "engine":
        from edgekit.backends.tensorrt.runner import TrtRunner

        return TrtRunner(entry.path, onnx_path=entry.path.with_suffix(".onnx"))
    from edgekit.backends.ort import OrtRunner

    return OrtRunner(entry.path, threads)


def ort_gpu_entries(art: Artifact, cfg: Config, threads: int, tensorrt_target: bool) -> list[tuple[ModelEntry, object]]:
    """The run's ONNX files again through ONNX Runtime's CUDA provider (and its TensorRT provider for a
    TensorRT target), when this onnxruntime build has them: the same runner interface, other providers."""
    from edgekit.backends.ort import PROVIDERS, OrtRunner, available_providers

    if cfg.gpu == "off":
        return []
    have = available_providers()
    kinds = [k for k in ("cuda", "tensorrt") if PROVIDERS[k][0] in have and (k == "cuda" or tensorrt_target)]
    out = []
    for entry in [e for e in art.entries.values() if e.format == "onnx"]:
        for kind in kinds:
            runner = OrtRunner(entry.path, threads, kind)
            out.append((dataclasses.replace(entry, name=f"{entry.name} ({runner.backend})"), runner))
    return out


def cuda_entries(art: Artifact, cfg: Config, input_size) -> list[tuple[ModelEntry, object]]:
    """(row entry, runner) pairs for the final torch model on the GPU, or none without one."""
    import torch

    if cfg.gpu == "off" or not torch.cuda.is_available():
        return []
    from edgekit.backends.torch_cuda import TorchCudaRunner

    src = next((e for e in reversed(list(art.entries.values())) if e.format == "torch" and e.module is not None), None)
    if src is None:
        return []
    out = []
    for precision in ("fp32", "fp16"):
        for compiled in (False, True) if cfg.torch_compile else (False,):
            runner = TorchCudaRunner(src.module, tuple(input_size), precision, compile=compiled)
            name = f"{src.name} ({runner.backend.removeprefix('torch-')} {precision})"
            out.append((dataclasses.replace(src, name=name, precision=precision, module=None), runner))
    return out


def run(art: Artifact, cfg: Config, ctx) -> dict:
    images, labels = val_arrays(ctx, cfg.val_images)
    n = len(images)
    threads = threads_of(cfg)
    tensorrt_target = ctx.recipe.quantize.target in TENSORRT_TARGETS
    pairs = ([(e, runner_for(e, threads)) for e in art.entries.values()] + cuda_entries(art, cfg, ctx.data.input_size)
             + ort_gpu_entries(art, cfg, threads, tensorrt_target))
    entries, runners = [p[0] for p in pairs], [p[1] for p in pairs]
    accs = [evaluate(r, images, labels, label=f"validate {e.name}") for e, r in pairs]
    timing = dict(rounds=cfg.rounds, warmup_s=cfg.warmup_s, min_s=cfg.min_seconds)
    latencies = measure_interleaved(runners, images, 1, min_runs=cfg.min_runs, label="latency @1", **timing)
    batch_times = measure_interleaved(runners, images, cfg.batch, min_runs=20, label=f"throughput @{cfg.batch}", **timing)
    rows = []
    for entry, runner, acc, lat, bt in zip(entries, runners, accs, latencies, batch_times):
        latency, throughput = latency_stats(lat), throughput_of(bt, cfg.batch)
        rows.append({
            "artifact": entry.name,
            "format": entry.format,
            "precision": entry.precision,
            "backend": runner.backend,
            "file": entry.path.name,
            "params": entry.params,
            "macs": entry.macs,
            "size_mb": round(size_mb(entry.path), 3),
            "top1": round(acc["top1"], 4),
            "top5": round(acc["top5"], 4),
            "latency_ms": latency,
            "latency_runs": len(lat),
            "throughput_ips": throughput,
        })
        if hasattr(runner, "profile"):  # a GPU row: trtexec-style figures at batch 1 and the throughput batch
            rows[-1]["gpu_timing"] = [runner.profile(b, warmup_s=cfg.warmup_s, min_s=cfg.min_seconds, cuda_graph=cfg.cuda_graph)
                                      for b in (1, cfg.batch) if b <= runner.max_batch]
        print(f"validate {entry.name}: top-1 {acc['top1']:.4f}  p50 {latency['p50']:.3f} ms  {throughput:,.0f} img/s @{cfg.batch}", flush=True)
    art.info["results"] = rows
    art.info["threads"] = threads
    return {"threads": threads, "val_images": n, "batch": cfg.batch, "rounds": cfg.rounds}
