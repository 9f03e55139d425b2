"""validate: accuracy (top-1/top-5 on the validation split) and CPU latency/throughput of every model
the run produced, torch models in PyTorch and ONNX files in ONNX Runtime, all on the same inputs."""
from __future__ import annotations

import os
from dataclasses import dataclass

from edgekit.artifact import Artifact, ModelEntry
from edgekit.backends import evaluate, measure_latency, measure_throughput
from edgekit.config import ranged
from edgekit.data.transforms import normalize
from edgekit.fileio import size_mb

NAME = "validate"
SECTION = "validate"


@dataclass
class Config:
    """`threads`: CPU threads for every runner (0 = all cores). Latency at batch 1: `warmup_s` of
    warm-up, then at least `min_runs` runs and `min_seconds`. Throughput at `batch`. `val_images`:
    limit the accuracy set (0 = the whole validation split)."""

    threads: int = ranged(0, 0, 1024)
    batch: int = ranged(32, 1, 4096)
    warmup_s: float = ranged(0.5, 0.0, 60.0)
    min_runs: int = ranged(100, 1, 1_000_000)
    min_seconds: float = ranged(2.0, 0.0, 600.0)
    val_images: int = ranged(0, 0, 10_000_000)


def skip(art, cfg: Config, ctx) -> str | None:
    return None


def threads_of(cfg: Config) -> int:
    return cfg.threads or len(os.sched_getaffinity(0))


def runner_for(entry: ModelEntry, threads: int):
    if entry.format == "torch":
        from edgekit.backends.torch_cpu import TorchRunner

        return TorchRunner(entry.module, threads)
    from edgekit.backends.ort import OrtRunner

    return OrtRunner(entry.path, threads)


def run(art: Artifact, cfg: Config, ctx) -> dict:
    val = ctx.data.val
    n = cfg.val_images or len(val)
    images = normalize(val.images[:n], ctx.data.mean, ctx.data.std).numpy()
    labels = val.labels[:n].numpy()
    threads = threads_of(cfg)
    rows = []
    for entry in art.entries.values():
        runner = runner_for(entry, threads)
        acc = evaluate(runner, images, labels, label=f"validate {entry.name}")
        latency = measure_latency(runner, images, cfg.warmup_s, cfg.min_runs, cfg.min_seconds)
        throughput = measure_throughput(runner, images, cfg.batch, cfg.warmup_s, min_s=cfg.min_seconds)
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
            "latency_ms": {k: v for k, v in latency.items() if k != "runs"},
            "latency_runs": latency["runs"],
            "throughput_ips": throughput,
        })
        print(f"validate {entry.name}: top-1 {acc['top1']:.4f}  p50 {latency['p50']:.3f} ms  {throughput:,.0f} img/s @{cfg.batch}", flush=True)
    art.info["results"] = rows
    art.info["threads"] = threads
    return {"threads": threads, "val_images": n, "batch": cfg.batch}
