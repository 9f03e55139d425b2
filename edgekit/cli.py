"""The `edgekit` command. Each command builds a Recipe or calls one function. Bad input prints one
line naming the problem and the fix and exits with code 2; a traceback only with --debug.

argparse rather than typer: typer 0.29 vendors a private click and pulls pydantic, and argparse lets
every usage error become the same one-line message as every other input error."""
from __future__ import annotations

import argparse
import json
import sys

from edgekit.errors import EdgekitError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse prints usage and exits; we want one line and code 2
        raise EdgekitError(f"{message} (see `{self.prog} --help`)")


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--prune {text!r} is not a number: give a fraction in [0, 1), e.g. 0.3") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"--prune {value} is outside [0, 1): give the fraction of channels to remove, e.g. 0.3")
    return value


def _pipeline_flags(p: argparse.ArgumentParser) -> None:
    """Flags shared by `compress` and `run`; each overrides one recipe value."""
    p.add_argument("--data", dest="data.name", help="built-in data set (fashion_mnist) or an image folder path")
    p.add_argument("--prune", dest="prune.ratio", type=_ratio, metavar="RATIO",
                   help="fraction of channels removed from every prunable layer, in [0, 1); 0.3 keeps 70%% of each layer and cuts MACs by about half")
    p.add_argument("--importance", dest="prune.importance", choices=["l2", "l1", "bn_scale", "taylor", "random"], help="pruning criterion (default l2)")
    p.add_argument("--target-macs", dest="prune.target_macs", type=float, metavar="FRACTION", help="instead of --prune: search the ratio that keeps at most this fraction of the baseline MACs, e.g. 0.5")
    p.add_argument("--target-latency-ms", dest="prune.target_latency_ms", type=float, metavar="MS", help="instead of --prune: search the ratio whose ONNX Runtime CPU p50 (batch 1, 1 thread) is at most MS")
    p.add_argument("--prune-steps", dest="prune.steps", type=int, metavar="N", help="prune in N steps with a short fine-tune between them (default 1)")
    p.add_argument("--global-prune", dest="prune.scope", action="store_const", const="global", help="rank channels across layers (prune.scope global) instead of the same ratio per layer")
    p.add_argument("--int8", dest="quantize.enabled", action="store_const", const=True, help="also produce an int8 Q/DQ ONNX model")
    p.add_argument("--no-distill", dest="distill.enabled", action="store_const", const=False, help="fine-tune after pruning with cross-entropy only (no knowledge distillation)")
    p.add_argument("--weights", dest="model.weights", metavar="FILE", help="state_dict checkpoint to start from instead of training a baseline")
    p.add_argument("--epochs", dest="train.epochs", type=int, metavar="N", help="baseline training epochs")
    p.add_argument("--distill-epochs", dest="distill.epochs", type=int, metavar="N", help="distillation (or fine-tuning) epochs after pruning")
    p.add_argument("--calibration", dest="quantize.calibration", choices=["minmax", "entropy", "percentile"], help="int8 calibration method")
    p.add_argument("--target", dest="quantize.target", choices=["cpu", "tensorrt"], help="int8 form: cpu (U8 activations) or tensorrt (symmetric S8)")
    p.add_argument("--max-drop", dest="quantize.max_drop", type=float, metavar="POINTS",
                   help="allowed int8 top-1 drop in points on held-out training images (default 1.0); past it the most harmful layers stay in float")
    p.add_argument("--qat", dest="quantize.qat", choices=["auto", "off", "on"], help="quantization-aware fine-tuning: auto (when mixed precision cannot meet --max-drop), off or on")
    p.add_argument("--fp16", dest="export.fp16", action="store_const", const=True, help="also write model.fp16.onnx (fp16 inside, fp32 input/output; for GPU targets)")
    p.add_argument("--output", dest="run.output", metavar="DIR", help="folder that receives the run folder (default: artifacts)")
    p.add_argument("--threads", dest="validate.threads", type=int, metavar="N", help="intra-op CPU threads for the validation runners (default 1; 0 = all cores)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help="override any recipe value, e.g. --set distill.temperature=2 (repeatable)")


def _overrides(args: argparse.Namespace) -> dict:
    import yaml

    out = {k: v for k, v in vars(args).items() if "." in k and v is not None}
    # A target flag replaces the recipe's ratio (a recipe file usually sets one); --prune with a target is still an error.
    if ("prune.target_macs" in out or "prune.target_latency_ms" in out) and "prune.ratio" not in out:
        out["prune.ratio"] = 0.0
    for item in args.sets:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise EdgekitError(f"--set {item!r} is not KEY=VALUE: write e.g. --set train.epochs=3")
        out[key] = yaml.safe_load(value)
    return out


def cmd_compress(args) -> None:
    from edgekit import pipeline
    from edgekit.recipe import from_dict, load_recipe

    over = {"model.name": args.model, **_overrides(args)}
    pipeline.run(load_recipe(args.recipe, over) if args.recipe else from_dict({}, "command line", over))


def cmd_run(args) -> None:
    from edgekit import pipeline
    from edgekit.recipe import load_recipe

    pipeline.run(load_recipe(args.recipe, _overrides(args)))


def cmd_models(args) -> None:
    from edgekit.tools import model_table

    print(model_table(args.pattern))


def cmd_bench(args) -> None:
    from edgekit.tools import bench_onnx

    r = bench_onnx(args.onnx_file, args.threads, args.batch, args.seconds)
    print(json.dumps(r, indent=2) if args.json else
          f"{args.onnx_file}: p50 {r['latency_ms']['p50']:.3f} ms  p90 {r['latency_ms']['p90']:.3f} ms  p99 {r['latency_ms']['p99']:.3f} ms "
          f"({r['runs']} runs at batch 1)  {r['throughput_ips']:,.0f} img/s at batch {r['batch']}  [{r['threads']} threads]")


def cmd_eval(args) -> None:
    from edgekit.tools import eval_onnx

    r = eval_onnx(args.onnx_file, args.data, args.threads)
    print(json.dumps(r, indent=2) if args.json else
          f"{args.onnx_file}: top-1 {r['top1'] * 100:.2f}%  top-5 {r['top5'] * 100:.2f}%  on {r['images']} {r['data']} validation images")


def build_parser() -> argparse.ArgumentParser:
    from edgekit import __version__

    p = _Parser(prog="edgekit", description="Compress a CNN image classifier for an edge device (prune, distill, export, int8) and measure every step.")
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    p.add_argument("--version", action="version", version=f"edgekit {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    c = sub.add_parser("compress", help="run the pipeline on a zoo model", description="Train or load MODEL, prune, distill, export ONNX, quantize to int8, validate and report. The flags build a recipe, written resolved into the run folder. Example: edgekit compress mobilenet_v3 --prune 0.3 --int8")
    c.add_argument("model", help="zoo model or alias, e.g. mobilenet_v3 (see `edgekit models`)")
    c.add_argument("--recipe", metavar="FILE", help="start from this recipe instead of the defaults")
    _pipeline_flags(c)
    c.set_defaults(func=cmd_compress)

    r = sub.add_parser("run", help="run the pipeline from a recipe file", description="Run the pipeline from a recipe YAML (e.g. recipes/mobilenet_v3_fashion_mnist.yaml or artifacts/<run>/recipe.yaml to reproduce a run). Flags override recipe values.")
    r.add_argument("recipe", help="recipe YAML file")
    _pipeline_flags(r)
    r.set_defaults(func=cmd_run)

    m = sub.add_parser("models", help="list the model zoo", description="List zoo models: name, family, params and MACs at the default input size, input size, paper; then the aliases.")
    m.add_argument("pattern", nargs="?", help="glob filter, e.g. 'mobilenet*'")
    m.set_defaults(func=cmd_models)

    b = sub.add_parser("bench", help="time an ONNX file in ONNX Runtime", description="Time any ONNX image classifier in ONNX Runtime on the CPU: p50/p90/p99 latency at batch 1 and throughput at --batch.")
    b.add_argument("onnx_file", help="ONNX model with one (N, C, H, W) input")
    b.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1, as in validate; 0 = all cores)")
    b.add_argument("--batch", type=int, default=32, help="batch size of the throughput figure (default 32)")
    b.add_argument("--seconds", type=float, default=2.0, help="minimum timed seconds per measurement (default 2)")
    b.add_argument("--json", action="store_true", help="print the figures as JSON")
    b.set_defaults(func=cmd_bench)

    e = sub.add_parser("eval", help="measure an ONNX model's accuracy", description="Top-1/top-5 of an edgekit-exported ONNX model on a data set's validation split (normalization read from the model's metadata).")
    e.add_argument("onnx_file", help="ONNX model exported by edgekit")
    e.add_argument("--data", default="fashion_mnist", help="built-in data set name or image folder path (default fashion_mnist)")
    e.add_argument("--threads", type=int, default=0, help="intra-op threads (0 = all cores)")
    e.add_argument("--json", action="store_true", help="print the figures as JSON")
    e.set_defaults(func=cmd_eval)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
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
    except KeyboardInterrupt:
        print("error: interrupted: the run folder keeps what finished and its report names the stage; start a new run to redo it", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
