"""The `edgekit` command. Each command builds a Recipe or calls one function. Bad input prints one
line naming the problem and the fix and exits with code 2; a traceback only with --debug.

argparse rather than typer: typer 0.29 vendors a private click and pulls pydantic, and argparse lets
every usage error become the same one-line message as every other input error."""

from __future__ import annotations

import argparse
import json
import sys

from edgekit.errors import EdgekitError
from edgekit.logs import show_on_console
from edgekit.target import PLATFORMS


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse prints usage and exits; we want one line and code 2
        raise EdgekitError(f"{message} (see `{self.prog} --help`)")


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--prune {text!r} is not a number: give a fraction in [0, 1), e.g. 0.3"
        ) from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(
            f"--prune {value} is outside [0, 1): give the fraction of channels to remove, e.g. 0.3"
        )
    return value


def _pipeline_flags(p: argparse.ArgumentParser) -> None:
    """Flags shared by `compress` and `run`; each overrides one recipe value."""
    p.add_argument("--data", dest="data.name", help="built-in data set (fashion_mnist) or an image folder path")
    p.add_argument(
        "--strict-data",
        dest="data.strict",
        action="store_const",
        const=True,
        help="refuse an image folder with unreadable images (default: skip them with a warning and count them)",
    )
    p.add_argument(
        "--prune",
        dest="prune.ratio",
        type=_ratio,
        metavar="RATIO",
        help="fraction of channels removed from every prunable layer, in [0, 1); 0.3 keeps 70%% of each layer and "
        "cuts MACs by about half",
    )
    p.add_argument(
        "--importance",
        dest="prune.importance",
        choices=["l2", "l1", "bn_scale", "taylor", "random"],
        help="pruning criterion (default l2)",
    )
    p.add_argument(
        "--target-macs",
        dest="prune.target_macs",
        type=float,
        metavar="FRACTION",
        help="instead of --prune: search the ratio that keeps at most this fraction of the baseline MACs, e.g. 0.5",
    )
    p.add_argument(
        "--target-latency-ms",
        dest="prune.target_latency_ms",
        type=float,
        metavar="MS",
        help="instead of --prune: search the ratio whose ONNX Runtime CPU p50 (batch 1, 1 thread) is at most MS",
    )
    p.add_argument(
        "--prune-steps",
        dest="prune.steps",
        type=int,
        metavar="N",
        help="prune in N steps with a short fine-tune between them (default 1)",
    )
    p.add_argument(
        "--global-prune",
        dest="prune.scope",
        action="store_const",
        const="global",
        help="rank channels across layers (prune.scope global) instead of the same ratio per layer",
    )
    p.add_argument(
        "--int8", dest="quantize.enabled", action="store_const", const=True, help="also produce an int8 Q/DQ ONNX model"
    )
    p.add_argument(
        "--no-distill",
        dest="distill.enabled",
        action="store_const",
        const=False,
        help="fine-tune after pruning with cross-entropy only (no knowledge distillation)",
    )
    p.add_argument(
        "--weights",
        dest="model.weights",
        metavar="FILE",
        help="state_dict checkpoint to start from instead of training a baseline",
    )
    p.add_argument("--epochs", dest="train.epochs", type=int, metavar="N", help="baseline training epochs")
    p.add_argument(
        "--distill-epochs",
        dest="distill.epochs",
        type=int,
        metavar="N",
        help="distillation (or fine-tuning) epochs after pruning",
    )
    p.add_argument(
        "--calibration",
        dest="quantize.calibration",
        choices=["minmax", "entropy", "percentile"],
        help="int8 calibration method",
    )
    p.add_argument(
        "--target",
        dest="target.platform",
        choices=PLATFORMS,
        help="where the model runs: cpu (U8-activation int8 for ONNX Runtime), openvino (the same files; OpenVINO's "
        "timings decide what ships) or tensorrt / jetson (symmetric S8 "
        "Q/DQ int8, and TensorRT engines built on this machine when TensorRT and a GPU are here)",
    )
    p.add_argument(
        "--max-drop",
        dest="gate.max_drop",
        type=float,
        metavar="POINTS",
        help="allowed top-1 drop in points (gate.max_drop, default 1.0): the int8 target (held-out training images; "
        "past it the most harmful layers stay in float), and with this flag also the accuracy gate of every "
        "deliverable against the baseline (validation split; gate.enforce): a stage past it fails and later stages "
        "do not run",
    )
    p.add_argument(
        "--keep-going",
        dest="gate.keep_going",
        action="store_const",
        const=True,
        help="run later stages after a failed accuracy gate",
    )
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue RUN_DIR after its last finished stage (hashes of its files checked); no other flags",
    )
    p.add_argument(
        "--qat",
        dest="qat.mode",
        choices=["auto", "off", "on"],
        help="quantization-aware fine-tuning: auto (when mixed precision cannot meet --max-drop), off or on",
    )
    p.add_argument(
        "--rewrite",
        dest="rewrite.mode",
        choices=["auto", "off", "on"],
        help="deployment rewrite candidate (HardSwish/SiLU -> ReLU, SE removed, distilled from the baseline): auto "
        "(in --int8 runs of models it changes), off or on",
    )
    p.add_argument(
        "--fp16",
        dest="export.fp16",
        action="store_const",
        const=True,
        help="also write model.fp16.onnx (fp16 inside, fp32 input/output; for GPU targets)",
    )
    p.add_argument(
        "--output", dest="run.output", metavar="DIR", help="folder that receives the run folder (default: artifacts)"
    )
    p.add_argument(
        "--threads",
        dest="validate.threads",
        type=int,
        metavar="N",
        help="intra-op CPU threads for the validation runners (default 1; 0 = all cores)",
    )
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any recipe value, e.g. --set distill.temperature=2 (repeatable)",
    )


def _overrides(args: argparse.Namespace) -> dict:
    import yaml

    out = {k: v for k, v in vars(args).items() if "." in k and v is not None}
    if "gate.max_drop" in out:  # the flag also turns the gate on (the int8 check always uses the number)
        out["gate.enforce"] = True
    # A target flag replaces the recipe's ratio (a recipe file usually sets one); --prune with a target is still
    # an error.
    if ("prune.target_macs" in out or "prune.target_latency_ms" in out) and "prune.ratio" not in out:
        out["prune.ratio"] = 0.0
    for item in args.sets:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise EdgekitError(f"--set {item!r} is not KEY=VALUE: write e.g. --set train.epochs=3")
        out[key] = yaml.safe_load(value)
    return out


def _resume(args, positional: str) -> bool:
    """Handle --resume: the run folder's own recipe, nothing else (a resumed run must stay reproducible)."""
    if not args.resume:
        return False
    import edgekit.pipeline as pipeline

    given = [
        k for k, v in vars(args).items() if ("." in k and v is not None) or (k in ("sets", "recipe", "model") and v)
    ]
    if given:

        def flag(k: str) -> str:
            if k == "sets":
                return "--set"
            if k == "model" or (k == "recipe" and positional == "RECIPE"):
                return positional
            return k  # the recipe key the flag sets, e.g. prune.ratio

        names = ", ".join(sorted(flag(k) for k in given))
        raise EdgekitError(
            f"--resume continues a run with its own recipe, so {names} cannot be given with it: drop them, or start "
            "a new run"
        )
    pipeline.resume(args.resume)
    return True


def cmd_compress(args) -> None:
    from edgekit.api import run_recipe
    from edgekit.recipe import from_dict, load_recipe

    if _resume(args, "MODEL"):
        return
    if not args.model:
        raise EdgekitError(
            "compress needs a MODEL (e.g. edgekit compress mobilenet_v3 --prune 0.3 --int8) or --resume RUN_DIR"
        )
    over = {"model.name": args.model, **_overrides(args)}
    run_recipe(load_recipe(args.recipe, over) if args.recipe else from_dict({}, "command line", over))


def cmd_run(args) -> None:
    from edgekit.api import run_recipe
    from edgekit.recipe import RUN_REQUIRED, load_recipe

    if _resume(args, "RECIPE"):
        return
    if not args.recipe:
        raise EdgekitError(
            "run needs a RECIPE file (e.g. edgekit run recipes/mobilenet_v3_fashion_mnist.yaml) or --resume RUN_DIR"
        )
    run_recipe(load_recipe(args.recipe, _overrides(args), RUN_REQUIRED))


def cmd_models(args) -> None:
    from edgekit.tools import model_table

    print(model_table(args.pattern))


def _build_options(args):
    from edgekit.backends.tensorrt.options import BuildOptions
    from edgekit.config import build

    values = {
        k: getattr(args, k)
        for k in ("min_batch", "opt_batch", "max_batch", "workspace_mb", "timing_cache")
        if getattr(args, k) is not None
    }
    return build(BuildOptions, {**values, "fp16": args.tensorrt_fp16}, "TensorRT build options")


def _batches(text: str) -> list[int]:
    try:
        values = [int(b) for b in text.split(",") if b.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--batches {text!r} is not a comma-separated list of integers: write e.g. 1,8,32"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"--batches {text!r} needs positive batch sizes, e.g. 1,8,32")
    return values


def _build_flags(p: argparse.ArgumentParser) -> None:
    """TensorRT engine options shared by `build` and `bench --backend tensorrt`."""
    p.add_argument("--min-batch", type=int, help="smallest batch of the engine's optimization profile (default 1)")
    p.add_argument("--opt-batch", type=int, help="batch TensorRT tunes kernels for (default 8)")
    p.add_argument("--max-batch", type=int, help="largest batch of the profile (default 32)")
    p.add_argument("--workspace-mb", type=int, help="builder workspace memory limit in MB (default 1024)")
    p.add_argument(
        "--timing-cache",
        metavar="FILE",
        help="timing cache reused across builds (default: one per TensorRT version and GPU in edgekit's cache; "
        "'' for none)",
    )
    p.add_argument(
        "--tensorrt-fp16",
        action="store_true",
        help="TensorRT 10 only: let float layers use fp16 kernels (FP16 builder flag); on TensorRT 11 build a "
        "model.fp16.onnx instead",
    )


def cmd_bench(args) -> None:
    from edgekit.tools import bench_onnx, bench_tensorrt

    if args.backend == "tensorrt":
        r = bench_tensorrt(args.onnx_file, _build_options(args), args.batches, args.seconds, args.cuda_graph)
        if args.json:
            print(json.dumps(r, indent=2))
            return
        print(f"{r['engine']} (TensorRT {r['stamp']['tensorrt']} on {r['stamp']['gpu']}):")
        for t in r["results"]:
            e, c = t["end_to_end_ms"], t["gpu_compute_ms"]
            print(
                f"  batch {t['batch']:>4}: end-to-end p50 {e['p50']:.3f} p90 {e['p90']:.3f} p99 {e['p99']:.3f} ms  "
                f"compute p50 {c['p50']:.3f} ms  H2D {t['h2d_ms']:.3f} D2H {t['d2h_ms']:.3f} ms  "
                f"{t['throughput_ips']:,.0f} img/s ({t['compute_throughput_ips']:,.0f} compute)  "
                f"[{t['iterations']} runs{', CUDA graph' if t['cuda_graph'] else ''}]"
            )
        return
    provider = {"onnxruntime": "cpu", "onnxruntime-cuda": "cuda", "onnxruntime-trt": "tensorrt"}[args.backend]
    r = bench_onnx(args.onnx_file, args.threads, args.batch, args.seconds, provider)
    print(
        json.dumps(r, indent=2)
        if args.json
        else f"{args.onnx_file}: p50 {r['latency_ms']['p50']:.3f} ms  p90 {r['latency_ms']['p90']:.3f} ms  "
        f"p99 {r['latency_ms']['p99']:.3f} ms ({r['runs']} runs at batch 1)  "
        f"{r['throughput_ips']:,.0f} img/s at batch {r['batch']}  [{r['backend']}, {r['threads']} threads]"
    )


def cmd_build(args) -> None:
    from edgekit.tools import build_tensorrt

    engine, stamp = build_tensorrt(args.onnx_file, _build_options(args), args.engine)
    print(
        json.dumps(stamp, indent=2)
        if args.json
        else f"{engine}: TensorRT {stamp['tensorrt']} on {stamp['gpu']} (sm {stamp['compute_capability']}), "
        f"{stamp['build']['typing']}ly typed, built in {stamp['build']['build_seconds']:.1f} s; "
        f"stamp {engine.name}.json"
    )


def cmd_eval(args) -> None:
    from edgekit.tools import eval_onnx

    r = eval_onnx(args.onnx_file, args.data, args.threads)
    print(
        json.dumps(r, indent=2)
        if args.json
        else f"{args.onnx_file}: top-1 {r['top1'] * 100:.2f}%  top-5 {r['top5'] * 100:.2f}%  on {r['images']} "
        f"{r['data']} validation images"
    )


def cmd_doctor(args) -> None:
    import edgekit.doctor as doctor

    info = doctor.collect()
    print(json.dumps(info, indent=2) if args.json else doctor.format_text(info))


def cmd_report(args) -> None:
    from edgekit.report_compare import compare

    print(compare(args.run_dirs, args.html), end="")


def build_parser() -> argparse.ArgumentParser:
    from edgekit.version import __version__

    p = _Parser(
        prog="edgekit",
        description="Compress a CNN image classifier for an edge device (prune, distill, export, int8) and measure "
        "every step.",
    )
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    p.add_argument("--version", action="version", version=f"edgekit {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    c = sub.add_parser(
        "compress",
        help="run the pipeline on a zoo model",
        description="Train or load MODEL, prune, distill, export ONNX, quantize to int8, validate and report. The "
        "flags build a recipe, written resolved into the run folder. Example: edgekit compress mobilenet_v3 "
        "--prune 0.3 --int8",
    )
    c.add_argument("model", nargs="?", help="zoo model or alias, e.g. mobilenet_v3 (see `edgekit models`)")
    c.add_argument("--recipe", metavar="FILE", help="start from this recipe instead of the defaults")
    _pipeline_flags(c)
    c.set_defaults(func=cmd_compress)

    r = sub.add_parser(
        "run",
        help="run the pipeline from a recipe file",
        description="Run the pipeline from a recipe YAML (e.g. recipes/mobilenet_v3_fashion_mnist.yaml or "
        "artifacts/<run>/recipe.yaml to reproduce a run). Flags override recipe values.",
    )
    r.add_argument("recipe", nargs="?", help="recipe YAML file")
    _pipeline_flags(r)
    r.set_defaults(func=cmd_run)

    m = sub.add_parser(
        "models",
        help="list the model zoo",
        description="List zoo models: name, family, params and MACs at the default input size, input size, paper; "
        "then the aliases.",
    )
    m.add_argument("pattern", nargs="?", help="glob filter, e.g. 'mobilenet*'")
    m.set_defaults(func=cmd_models)

    b = sub.add_parser(
        "bench",
        help="time an ONNX file or TensorRT engine",
        description="Time any ONNX image classifier: in ONNX Runtime (CPU, or its CUDA/TensorRT providers): "
        "p50/p90/p99 latency at batch 1 and throughput at --batch; with --backend tensorrt, build (or reuse) a "
        "stamped engine on this machine and time it like trtexec at --batches.",
    )
    b.add_argument(
        "onnx_file", help="ONNX model with one (N, C, H, W) input, or a stamped .engine for --backend tensorrt"
    )
    b.add_argument(
        "--backend",
        choices=["onnxruntime", "onnxruntime-cuda", "onnxruntime-trt", "tensorrt"],
        default="onnxruntime",
        help="onnxruntime (CPU, default), its CUDA or TensorRT execution provider (onnxruntime-gpu), or TensorRT "
        "itself",
    )
    b.add_argument(
        "--batches", type=_batches, default=[1, 8, 32], help="tensorrt: comma-separated batch sizes (default 1,8,32)"
    )
    b.add_argument("--cuda-graph", action="store_true", help="tensorrt: replay the inference from a CUDA graph")
    _build_flags(b)
    b.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1, as in validate; 0 = all cores)")
    b.add_argument("--batch", type=int, default=32, help="batch size of the throughput figure (default 32)")
    b.add_argument("--seconds", type=float, default=2.0, help="minimum timed seconds per measurement (default 2)")
    b.add_argument("--json", action="store_true", help="print the figures as JSON")
    b.set_defaults(func=cmd_bench)

    t = sub.add_parser(
        "build",
        help="build a stamped TensorRT engine from an ONNX file",
        description="Build a TensorRT engine from an ONNX file on this machine (int8 from Q/DQ nodes, e.g. a "
        "model.int8.onnx made with --target tensorrt), with a dynamic batch profile and a reused timing cache, "
        "and stamp it (ENGINE.json: TensorRT version, GPU, L4T, ONNX hash, options).",
    )
    t.add_argument("onnx_file", help="ONNX model, e.g. artifacts/<run>/model.int8.onnx")
    t.add_argument("--engine", metavar="FILE", help="engine path (default: beside the ONNX file, .engine)")
    t.add_argument("--json", action="store_true", help="print the stamp as JSON")
    _build_flags(t)
    t.set_defaults(func=cmd_build)

    e = sub.add_parser(
        "eval",
        help="measure an ONNX model's accuracy",
        description="Top-1/top-5 of an edgekit-exported ONNX model on a data set's validation split (normalization "
        "read from the model's metadata).",
    )
    e.add_argument("onnx_file", help="ONNX model exported by edgekit")
    e.add_argument(
        "--data", default="fashion_mnist", help="built-in data set name or image folder path (default fashion_mnist)"
    )
    e.add_argument("--threads", type=int, default=0, help="intra-op threads (0 = all cores)")
    e.add_argument("--json", action="store_true", help="print the figures as JSON")
    e.set_defaults(func=cmd_eval)

    d = sub.add_parser(
        "doctor",
        help="show what edge latency figures depend on",
        description="Print versions (torch, CUDA, cuDNN, ONNX Runtime and its providers, TensorRT, ...), GPU, CPU "
        "and OS; on a Jetson also the L4T/JetPack release, power mode and whether clocks are locked. What is "
        "missing shows as 'unavailable (reason)'.",
    )
    d.add_argument("--json", action="store_true", help="print the facts as JSON")
    d.set_defaults(func=cmd_doctor)

    rp = sub.add_parser(
        "report",
        help="compare run folders side by side",
        description="Print each run's table (with pass/fail status) side by side; cells that differ from the first "
        "run beyond noise are marked. --html also writes one self-contained comparison page with a combined "
        "top-1 vs latency chart.",
    )
    rp.add_argument(
        "run_dirs", nargs="+", metavar="RUN_DIR", help="run folder holding report.json, e.g. artifacts/<run>"
    )
    rp.add_argument("--html", metavar="FILE", help="also write the comparison as a self-contained HTML page")
    rp.set_defaults(func=cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    show_on_console(always=True)  # the command line prints edgekit's log lines as its output
    try:
        args = build_parser().parse_args(argv)
        if not getattr(args, "func", None):
            build_parser().print_help()
            return 0
        args.func(args)
    except EdgekitError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # e.g. `edgekit doctor --json | head`: the reader left; not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(
            "error: interrupted: the run folder keeps every finished stage; continue it with "
            "`edgekit run --resume RUN_DIR`",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
