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
from edgekit.backends.peak import PEAK_HOW, achieved, mac_peak
from edgekit.backends.select import runner_for
from edgekit.backends.sharded import accuracies
from edgekit.backends.torch_cpu import torch_threads
from edgekit.config import ranged
from edgekit.data.arrays import val_arrays
from edgekit.envinfo import usable_cores
from edgekit.fileio import size_mb
from edgekit.metrics import latency_stats
from edgekit.stages.base import Stage, register
from edgekit.stages.context import Context

log = logging.getLogger(__name__)
CPU_BACKENDS = ("torch", "onnxruntime", "openvino")


@dataclass
class Config:
    """`threads`: intra-op CPU threads for every runner (0 = all cores). One by default: edge
    deployments often pin inference to one core, and on a 2-core machine two threads made timings
    bimodal (0.3 vs 0.7 ms for the same model) whenever anything else woke up; one thread left a core
    for that noise and gave repeatable figures. Latency at batch 1: `warmup_s` of warm-up, then at
    least `min_runs` runs and `min_seconds` per model, timed in `rounds` slices that alternate between
    the models so drift does not favour one. One second is enough: the demo's five ONNX files measured
    three times each way gave p50s within 1.5% of each other with 1 s and within 0.9% with 2 s (0.1-0.26
    ms, AMD EPYC), where the choices they decide differ by 15% or more, and 2 s cost the demo 26 s.
    Throughput at `batch`: at least one batch per round and `min_seconds` per model.
    `val_images`: limit the accuracy set (0 = the whole validation split).
    `gpu`: auto adds PyTorch-on-CUDA rows when a GPU is visible, and ONNX Runtime CUDA (and, for a
    TensorRT target, TensorRT) provider rows when the installed onnxruntime has them; `openvino`: auto
    adds OpenVINO CPU rows for every ONNX file when OpenVINO is installed (always, for target.platform
    openvino); `torch_compile` adds torch.compile rows; `cuda_graph` replays GPU rows' inference from a
    CUDA graph in their GPU timing. `profile_runs`: ONNX Runtime's per-layer profile (median of that many
    runs, batch 1, `threads`) of the fp32 and int8 deployables, shown in report.html (0 = none)."""

    threads: int = ranged(1, 0, 1024)
    batch: int = ranged(32, 1, 4096)
    warmup_s: float = ranged(0.5, 0.0, 60.0)
    min_runs: int = ranged(100, 1, 1_000_000)
    min_seconds: float = ranged(1.0, 0.0, 600.0)
    rounds: int = ranged(5, 1, 100)
    val_images: int = ranged(0, 0, 10_000_000)
    gpu: Literal["auto", "off"] = "auto"
    openvino: Literal["auto", "off"] = "auto"
    torch_compile: bool = False
    cuda_graph: bool = False
    profile_runs: int = ranged(30, 0, 100_000)


PROFILED = (Role.ONNX, Role.INT8_ONNX)  # the deployables a user weighs against each other


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


def openvino_entries(art: Artifact, cfg: Config, threads: int, target: str) -> list[tuple[ModelEntry, Runner]]:
    """The run's ONNX files again in OpenVINO's CPU plugin: when it is installed (openvino=auto), and
    always for an openvino target (its rows decide what ships)."""
    from edgekit.backends.openvino_cpu import BACKEND, OpenVinoRunner, available

    if target != "openvino" and (cfg.openvino == "off" or not available()):
        return []
    onnx_files = [e for e in art.entries.values() if e.format == "onnx"]
    return [(dataclasses.replace(e, name=f"{e.name} ({BACKEND})"), OpenVinoRunner(e.path, threads)) for e in onnx_files]


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
    own = [(e, runner_for(e, threads)) for e in art.entries.values()]
    pairs: list[tuple[ModelEntry, Runner]] = (
        own
        + openvino_entries(art, cfg, threads, ctx.recipe.target.platform)
        + cuda_entries(art, cfg, ctx.data.input_size)
        + ort_gpu_entries(art, cfg, threads, ctx.recipe.target.tensorrt)
    )
    # Each row names the artifact it measures ("model.int8.onnx (openvino)" measures model.int8.onnx):
    # the other runtimes' rows keep their artifact's file.
    by_path = {e.path: e.name for e in art.entries.values()}
    of = [by_path.get(e.path, e.name) for e, _ in pairs]
    entries, runners = [p[0] for p in pairs], [p[1] for p in pairs]
    # This run's own models are scored across the ranks of a distributed run; the other runtimes' rows here.
    accs = accuracies([e for e, _ in own], images, labels, threads, label="validate")
    accs += [evaluate(r, images, labels, label=f"validate {e.name}") for e, r in pairs[len(own) :]]

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
    # At least one batch per round, else `min_seconds` decides: a fixed 20 batches of 32 took a torch row
    # at 224 px (7 img/s on one core) 90 s each, and the median of five is as stable for a run that long.
    batch_times = timed(cfg.batch, cfg.rounds, f"throughput @{cfg.batch}")
    peak = mac_peak(threads)
    rows: list[dict[str, Any]] = []
    for entry, name, runner, acc, lat, bt in zip(entries, of, runners, accs, latencies, batch_times, strict=True):
        latency, throughput = latency_stats(lat), throughput_of(bt, cfg.batch)
        rows.append(
            {
                "artifact": entry.name,
                "of": name,
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
        if runner.backend in CPU_BACKENDS and entry.macs:  # share of the measured MAC limit, at batch cfg.batch
            gmacs = achieved(entry.macs, throughput)
            limit = peak["int8" if entry.precision == "int8" else "fp32"]
            rows[-1].update({"gmacs": round(gmacs, 2), "peak_share": round(gmacs / limit, 4)})
        kernels = getattr(runner, "kernels", None)
        if kernels is not None and runner.backend in ("onnxruntime", "openvino"):  # the kernels the CPU really runs
            rows[-1]["kernels"] = kernels()
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
    metrics: dict[str, Any] = {
        "threads": threads,
        "val_images": n,
        "batch": cfg.batch,
        "rounds": cfg.rounds,
        "peak_gmacs": {"fp32": peak["fp32"], "int8": peak["int8"], "how": PEAK_HOW},
    }
    if cfg.profile_runs:
        metrics["profiles"] = profiles(art, cfg.profile_runs, threads)
    return metrics


def profiles(art: Artifact, runs: int, threads: int) -> dict[str, Any]:
    """Per-layer ONNX Runtime profiles of the deployables, by file name (a mapping: report.md's one-line
    stage summary leaves it out; report.json and report.html keep it)."""
    from edgekit.backends.profile import profile_onnx

    out: dict[str, Any] = {}
    for role in PROFILED:
        if role in art:
            path = art[role].path
            log.info(f"validate: per-layer profile of {path.name} ({runs} runs)")
            out[path.name] = profile_onnx(path, threads=threads, runs=runs)
    return out


STAGE = register(Stage(name="validate", section="validate", config=Config, run=run, consumes=tuple(Role)))
