"""validate: accuracy (top-1/top-5 on the validation split) and latency/throughput of every model the
run produced, all on the same inputs: torch models in PyTorch on the CPU, ONNX files in ONNX Runtime,
TensorRT engines through their stamped runner. Where a CUDA GPU is visible, the final torch model is
also run on it (fp32 and fp16; torch.compile too when asked), and every GPU row gets trtexec-style
figures: end-to-end versus GPU compute time, copies, throughput (edgekit.backends.gpu_timing)."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, Literal

from edgekit.artifact import Artifact, ModelEntry, Role
from edgekit.backends import Runner, evaluate, measure_interleaved, throughput_of
from edgekit.backends.gpu_timing import GpuModel
from edgekit.backends.select import runner_for
from edgekit.backends.torch_cpu import torch_threads
from edgekit.config import ranged
from edgekit.data.arrays import val_arrays
from edgekit.envinfo import usable_cores
from edgekit.fileio import size_mb
from edgekit.metrics import latency_stats
from edgekit.stages.base import Stage, register
from edgekit.stages.context import Context

log = logging.getLogger(__name__)


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


def threads_of(cfg: Config) -> int:
    return cfg.threads or usable_cores()


def ort_gpu_entries(art: Artifact, cfg: Config, threads: int, tensorrt_target: bool) -> list[tuple[ModelEntry, Runner]]:
    """The run's ONNX files again through ONNX Runtime's CUDA provider (and its TensorRT provider for a
    TensorRT target), when this onnxruntime build has them: the same runner interface, other providers."""
    from edgekit.backends.ort import PROVIDERS, OrtRunner, available_providers

    if cfg.gpu == "off":
        return []
    have = available_providers()
    kinds = [k for k in ("cuda", "tensorrt") if PROVIDERS[k][0] in have and (k == "cuda" or tensorrt_target)]
    out: list[tuple[ModelEntry, Runner]] = []
    for entry in [e for e in art.entries.values() if e.format == "onnx"]:
        for kind in kinds:
            runner = OrtRunner(entry.path, threads, kind)
            out.append((dataclasses.replace(entry, name=f"{entry.name} ({runner.backend})"), runner))
    return out


def cuda_entries(art: Artifact, cfg: Config, input_size) -> list[tuple[ModelEntry, Runner]]:
    """(row entry, runner) pairs for the final torch model on the GPU, or none without one."""
    import torch

    if cfg.gpu == "off" or not torch.cuda.is_available():
        return []
    from edgekit.backends.torch_cuda import TorchCudaRunner

    src = next((e for e in reversed(list(art.entries.values())) if e.format == "torch" and e.module is not None), None)
    if src is None or src.module is None:
        return []
    out: list[tuple[ModelEntry, Runner]] = []
    for precision in ("fp32", "fp16"):
        for compiled in (False, True) if cfg.torch_compile else (False,):
            runner = TorchCudaRunner(src.module, tuple(input_size), precision, compile=compiled)
            name = f"{src.name} ({runner.backend.removeprefix('torch-')} {precision})"
            out.append((dataclasses.replace(src, name=name, precision=precision, module=None), runner))
    return out


def run(art: Artifact, cfg: Config, ctx: Context) -> dict:
    threads = threads_of(cfg)
    with torch_threads(threads):  # the torch rows run with the same thread count as every other row
        return _validate(art, cfg, ctx, threads)


def _validate(art: Artifact, cfg: Config, ctx: Context, threads: int) -> dict:
    images, labels = val_arrays(ctx.data, cfg.val_images)
    n = len(images)
    pairs: list[tuple[ModelEntry, Runner]] = (
        [(e, runner_for(e, threads)) for e in art.entries.values()]
        + cuda_entries(art, cfg, ctx.data.input_size)
        + ort_gpu_entries(art, cfg, threads, ctx.recipe.target.tensorrt)
    )
    entries, runners = [p[0] for p in pairs], [p[1] for p in pairs]
    accs = [evaluate(r, images, labels, label=f"validate {e.name}") for e, r in pairs]

    def timed(batch: int, min_runs: int, label: str) -> list[list[float]]:
        return measure_interleaved(
            runners,
            images,
            batch,
            rounds=cfg.rounds,
            warmup_s=cfg.warmup_s,
            min_runs=min_runs,
            min_s=cfg.min_seconds,
            label=label,
        )

    latencies = timed(1, cfg.min_runs, "latency @1")
    batch_times = timed(cfg.batch, 20, f"throughput @{cfg.batch}")
    rows: list[dict[str, Any]] = []
    for entry, runner, acc, lat, bt in zip(entries, runners, accs, latencies, batch_times, strict=True):
        latency, throughput = latency_stats(lat), throughput_of(bt, cfg.batch)
        rows.append(
            {
                "artifact": entry.name,
                "role": entry.role.value,
                "source": entry.source.value if entry.source else None,
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
            }
        )
        if isinstance(runner, GpuModel):  # a GPU row: trtexec-style figures at batch 1 and the throughput batch
            rows[-1]["gpu_timing"] = [
                runner.profile(b, warmup_s=cfg.warmup_s, min_s=cfg.min_seconds, cuda_graph=cfg.cuda_graph)
                for b in (1, cfg.batch)
                if b <= runner.max_batch
            ]
        log.info(
            f"validate {entry.name}: top-1 {acc['top1']:.4f}  p50 {latency['p50']:.3f} ms  {throughput:,.0f} img/s "
            f"@{cfg.batch}"
        )
    art.info.results = rows
    art.info.threads = threads
    return {"threads": threads, "val_images": n, "batch": cfg.batch, "rounds": cfg.rounds}


STAGE = register(Stage(name="validate", section="validate", config=Config, run=run, consumes=tuple(Role)))
