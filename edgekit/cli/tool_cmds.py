"""The single-purpose commands: models, bench, build, eval, doctor, report. Each calls one function of
edgekit.tools / doctor / report_compare and prints text, or one JSON object with --json."""

from pathlib import Path
from typing import Annotated, Any

import typer

from edgekit.cli.choices import BenchBackend
from edgekit.cli.output import emit_json
from edgekit.cli.signature import with_options
from edgekit.errors import EdgekitError

JSON = Annotated[bool, typer.Option("--json", help="print one JSON object on stdout")]
TRT = "TensorRT build"


def parse_batches(text: str) -> list[int]:
    try:
        values = [int(b) for b in text.split(",") if b.strip()]
    except ValueError:
        raise EdgekitError(f"--batches {text!r} is not a comma-separated list of integers: write e.g. 1,8,32") from None
    if not values or min(values) < 1:
        raise EdgekitError(f"--batches {text!r} needs positive batch sizes, e.g. 1,8,32")
    return values


def models(
    pattern: Annotated[str | None, typer.Argument(help="glob filter, e.g. 'mobilenet*'", show_default=False)] = None,
    json_output: JSON = False,
) -> None:
    """List the model zoo: name, family, params, MACs (and the published figure) at the default input size."""
    from edgekit.tools import model_aliases, model_rows, model_table

    if json_output:
        emit_json({"schema_version": 1, "models": model_rows(pattern), "aliases": model_aliases()})
    else:
        typer.echo(model_table(pattern))


# TensorRT engine options shared by `build` and `bench --backend tensorrt`.
def _trt(help: str, metavar: str | None = None) -> Any:
    return typer.Option(rich_help_panel=TRT, help=help, metavar=metavar)


TRT_OPTIONS = [
    ("min_batch", None, Annotated[int | None, _trt("smallest batch of the profile (default 1)")]),
    ("opt_batch", None, Annotated[int | None, _trt("batch TensorRT tunes kernels for (default 8)")]),
    ("max_batch", None, Annotated[int | None, _trt("largest batch of the profile (default 32)")]),
    ("workspace_mb", None, Annotated[int | None, _trt("builder workspace memory limit in MB (default 1024)")]),
    ("timing_cache", None, Annotated[str | None, _trt(
        "timing cache reused across builds (default: one per TensorRT version and GPU in edgekit's cache; '' for "
        "none)", metavar="FILE")]),
    ("tensorrt_fp16", False, Annotated[bool, typer.Option("--tensorrt-fp16", rich_help_panel=TRT,
        help="TensorRT 10 only: let float layers use fp16 kernels; on TensorRT 11 build a model.fp16.onnx instead")]),
]  # fmt: skip


def _build_options(trt: dict[str, Any]) -> Any:
    from edgekit.backends.tensorrt.options import BuildOptions
    from edgekit.config import build

    values = {k: v for k, v in trt.items() if v is not None and k != "tensorrt_fp16"}
    return build(BuildOptions, {**values, "fp16": trt["tensorrt_fp16"]}, "TensorRT build options")


@with_options(TRT_OPTIONS)
def bench(
    onnx_file: Annotated[
        Path, typer.Argument(help="ONNX model with one (N, C, H, W) input, or a stamped .engine for tensorrt")
    ],
    backend: Annotated[
        BenchBackend,
        typer.Option(help="onnxruntime (CPU), its CUDA or TensorRT execution provider (onnxruntime-gpu), or TensorRT"),
    ] = BenchBackend.onnxruntime,
    threads: Annotated[int, typer.Option(help="intra-op threads (1 as in validate; 0 = all cores)")] = 1,
    batch: Annotated[int, typer.Option(help="batch size of the throughput figure")] = 32,
    seconds: Annotated[float, typer.Option(help="minimum timed seconds per measurement")] = 2.0,
    batches: Annotated[str, typer.Option(rich_help_panel=TRT, help="tensorrt: comma-separated batch sizes")] = "1,8,32",
    cuda_graph: Annotated[bool, typer.Option(rich_help_panel=TRT, help="tensorrt: replay from a CUDA graph")] = False,
    json_output: JSON = False,
    **trt: Any,
) -> None:
    """Time an ONNX file (ONNX Runtime) or a TensorRT engine: p50/p90/p99 latency and throughput."""
    from edgekit.tools import bench_onnx, bench_tensorrt

    if backend is BenchBackend.tensorrt:
        options = _build_options(trt)
        r = bench_tensorrt(onnx_file, options, parse_batches(batches), seconds, cuda_graph)
        if json_output:
            return emit_json(r)
        typer.echo(f"{r['engine']} (TensorRT {r['stamp']['tensorrt']} on {r['stamp']['gpu']}):")
        for t in r["results"]:
            e, c = t["end_to_end_ms"], t["gpu_compute_ms"]
            typer.echo(
                f"  batch {t['batch']:>4}: end-to-end p50 {e['p50']:.3f} p90 {e['p90']:.3f} p99 {e['p99']:.3f} ms  "
                f"compute p50 {c['p50']:.3f} ms  H2D {t['h2d_ms']:.3f} D2H {t['d2h_ms']:.3f} ms  "
                f"{t['throughput_ips']:,.0f} img/s ({t['compute_throughput_ips']:,.0f} compute)  "
                f"[{t['iterations']} runs{', CUDA graph' if t['cuda_graph'] else ''}]"
            )
        return None
    provider = {"onnxruntime": "cpu", "onnxruntime-cuda": "cuda", "onnxruntime-trt": "tensorrt"}[backend.value]
    r = bench_onnx(onnx_file, threads, batch, seconds, provider)
    if json_output:
        return emit_json(r)
    typer.echo(
        f"{onnx_file}: p50 {r['latency_ms']['p50']:.3f} ms  p90 {r['latency_ms']['p90']:.3f} ms  "
        f"p99 {r['latency_ms']['p99']:.3f} ms ({r['runs']} runs at batch 1)  "
        f"{r['throughput_ips']:,.0f} img/s at batch {r['batch']}  [{r['backend']}, {r['threads']} threads]"
    )
    return None


@with_options(TRT_OPTIONS)
def build(
    onnx_file: Annotated[Path, typer.Argument(help="ONNX model, e.g. artifacts/<run>/model.int8.onnx")],
    engine: Annotated[
        Path | None, typer.Option(metavar="FILE", help="engine path (default: beside the ONNX file, .engine)")
    ] = None,
    json_output: JSON = False,
    **trt: Any,
) -> None:
    """Build a stamped TensorRT engine from an ONNX file on this machine (int8 from its Q/DQ nodes)."""
    from edgekit.tools import build_tensorrt

    options = _build_options(trt)
    path, stamp = build_tensorrt(onnx_file, options, engine)
    if json_output:
        return emit_json({"engine": str(path), **stamp})
    typer.echo(
        f"{path}: TensorRT {stamp['tensorrt']} on {stamp['gpu']} (sm {stamp['compute_capability']}), "
        f"{stamp['build']['typing']}ly typed, built in {stamp['build']['build_seconds']:.1f} s; stamp {path.name}.json"
    )
    return None


def eval_cmd(
    onnx_file: Annotated[Path, typer.Argument(help="ONNX model exported by edgekit")],
    data: Annotated[str, typer.Option(help="built-in data set name or image folder path")] = "fashion_mnist",
    threads: Annotated[int, typer.Option(help="intra-op threads (0 = all cores)")] = 0,
    json_output: JSON = False,
) -> None:
    """Top-1/top-5 of an edgekit-exported ONNX model on a data set's validation split."""
    from edgekit.tools import eval_onnx

    r = eval_onnx(onnx_file, data, threads)
    if json_output:
        return emit_json(r)
    typer.echo(
        f"{onnx_file}: top-1 {r['top1'] * 100:.2f}%  top-5 {r['top5'] * 100:.2f}%  on {r['images']} {r['data']} "
        "validation images"
    )
    return None


def doctor(json_output: JSON = False) -> None:
    """Show what edge latency figures depend on: versions, providers, GPU, CPU, OS, Jetson power mode."""
    import edgekit.doctor as doc

    info = doc.collect()
    if json_output:
        return emit_json(info)
    typer.echo(doc.format_text(info))
    return None


def report(
    run_dirs: Annotated[list[str], typer.Argument(metavar="RUN_DIR...", help="run folders holding report.json")],
    html: Annotated[
        str | None, typer.Option(metavar="FILE", help="also write the comparison as a self-contained HTML page")
    ] = None,
    json_output: JSON = False,
) -> None:
    """Compare run folders side by side; cells that differ from the first run beyond noise are marked."""
    from edgekit.report_compare import compare, load_run

    if json_output:
        runs = [load_run(d) for d in run_dirs]
        if html:
            compare(run_dirs, html)
        keys = ("run_dir", "status", "error", "model", "data", "target", "max_drop", "ship", "results", "gates")
        return emit_json({"schema_version": 1, "runs": [{k: r.get(k) for k in keys} for r in runs], "html": html})
    typer.echo(compare(run_dirs, html), nl=False)
    return None


def profile(
    onnx_file: Annotated[Path, typer.Argument(help="ONNX model, e.g. artifacts/<run>/model.int8.onnx")],
    threads: Annotated[int, typer.Option(help="intra-op threads (1 as in validate; 0 = all cores)")] = 1,
    runs: Annotated[int, typer.Option(help="timed runs; each layer's time is its median")] = 50,
    batch: Annotated[int, typer.Option(help="batch size of the profiled runs")] = 1,
    top: Annotated[int, typer.Option(help="rows shown, slowest first (0 = all)")] = 20,
    json_output: JSON = False,
) -> None:
    """Per-layer time in ONNX Runtime beside MACs, parameters, bytes moved and MACs per byte."""
    from edgekit.backends.profile import format_profile, profile_onnx

    result = profile_onnx(onnx_file, threads=threads, runs=runs, batch=batch)
    if json_output:
        return emit_json(result)
    typer.echo(format_profile(result, top=top))
    return None
