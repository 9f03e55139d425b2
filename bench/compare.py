"""Compare edgekit's default pipeline with what a user does today with each peer's own defaults, on the
same trained baseline and the same calibration images, and write bench/results/<model>_<data>.json
plus bench/results/RESULTS.md.

    python bench/compare.py                                     # the full comparison (long: see README)
    python bench/compare.py --quick --models mobilenet_v3       # smoke run on the shipped slice
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import baseline, peers, table
from bench.timing import QUICK_TIMING, Timing, measure
from edgekit.artifact import Role
from edgekit.errors import EdgekitError


class Steps:
    """Progress lines: which step of which model, and the time so far."""

    def __init__(self, model: str):
        self.model, self.start = model, time.perf_counter()

    def __call__(self, text: str) -> None:
        print(f"[bench {self.model} +{time.perf_counter() - self.start:,.0f}s] {text}", flush=True)


def _error(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def run_edgekit(recipe):
    """edgekit's default pipeline through its Python API, as `edgekit compress` runs it."""
    from edgekit import pipeline

    return pipeline.run(recipe)


def stage_seconds(art, leave_out: tuple[str, ...]) -> float:
    return sum(r.seconds for r in art.history if r.name not in leave_out)


def versions() -> str:
    import onnxruntime
    import torch
    import torch_pruning

    from edgekit import __version__
    from edgekit.envinfo import cpu_model

    nncf_version = "not installed"
    if peers.nncf_available() is None:
        import nncf

        nncf_version = nncf.__version__
    return (
        f"edgekit {__version__}, torch {torch.__version__}, torch-pruning {torch_pruning.__version__}, "
        f"onnxruntime {onnxruntime.__version__}, nncf {nncf_version}; CPU {cpu_model()}"
    )


SEEDED = ("train.seed", "distill.seed", "prune.seed", "quantize.seed")  # what a bench seed sets


def bench_model(model: str, args, sets: dict, timing: Timing) -> Path:
    """The comparison once per seed (each its own baseline and every row from it), each seed's result in
    <out>/seeds/, and the merged result (mean over seeds, top-1's spread) in <out>."""
    runs: dict[int, tuple[dict, dict]] = {}
    reused: list[int] = []
    for seed in args.seeds:
        earlier = _earlier_seed(model, args, sets, seed) if args.reuse_seeds else None
        if earlier is not None:
            runs[seed] = earlier
            reused.append(seed)
            continue
        runs[seed] = bench_seed(model, args, {**sets, **dict.fromkeys(SEEDED, seed)}, timing, seed)
        table.write(Path(args.out) / "seeds", *runs[seed], suffix=f"_seed{seed}")
    res = table.merge_seeds({seed: r for seed, (r, _) in runs.items()})
    meta = dict(runs[args.seeds[-1]][1])
    meta["edgekit_runs"] = {seed: m["edgekit_run"] for seed, (_, m) in runs.items()}
    meta["bars"] = table.bars(res)
    if len(args.seeds) > 1:
        meta["notes"] = meta["notes"] + [
            f"seeds {', '.join(map(str, args.seeds))}: each seed sets {', '.join(SEEDED)}; every seed's own "
            f"table is in {_shown(Path(args.out) / 'seeds')}/RESULTS.md"
        ]
    if reused:
        meta["notes"] = meta["notes"] + [
            f"seeds {', '.join(map(str, reused))} reused from an earlier run (--reuse-seeds): their rows were "
            "timed in that run's rounds, so compare speed within a seed's own table"
        ]
    out = table.write(Path(args.out), res, meta)
    print(table.markdown(res, meta), flush=True)
    return out


def data_label(recipe) -> str:
    """The data set's name in result files and work folders, with the size where a recipe resizes it
    (fashion_mnist-160px), so a run at another resolution keeps the native one's results."""
    size = recipe.data.image_size
    return f"{recipe.data.name}-{size}px" if size else recipe.data.name


def _earlier_seed(model: str, args, sets: dict, seed: int) -> tuple[dict, dict] | None:
    """A seed's result from an earlier run in <out>/seeds/, or None when there is none."""
    import json

    data_name = data_label(baseline.recipe_for(model, args.data, args.quick, sets))
    res_path, meta_path = table.paths(Path(args.out) / "seeds", model, data_name, f"_seed{seed}")
    if not (res_path.is_file() and meta_path.is_file()):
        return None
    print(f"[bench {model} seed {seed}] reused {_shown(res_path)} (--reuse-seeds)", flush=True)
    return json.loads(res_path.read_text()), json.loads(meta_path.read_text())


def bench_seed(model: str, args, sets: dict, timing: Timing, seed: int) -> tuple[dict, dict]:
    step = Steps(f"{model} seed {seed}")
    recipe = baseline.recipe_for(model, args.data, args.quick, sets)
    data = baseline.dataset(recipe)
    data_name = data_label(recipe)
    work = Path(args.work) / f"{model}_{data_name}{'-quick' if args.quick else ''}" / f"seed{seed}"
    step(f"baseline: edgekit load + train stages ({recipe.train.epochs} epochs, cached in edgekit's baseline cache)")
    ckpt, base_model, train_stats = baseline.trained_baseline(recipe, data, work)
    from edgekit.metrics import count_macs

    base_macs = count_macs(base_model, data.input_size)
    calib = baseline.calibration_set(recipe, data)
    files: dict[str, Path] = {}
    info: dict[str, dict] = {}  # method -> macs, seconds, or error

    step("export baseline.onnx")
    files["baseline-fp32"] = baseline.export_onnx(base_model, data, recipe, work / "baseline.onnx")
    info["baseline-fp32"] = {"macs": base_macs, "seconds": 0.0}

    step("edgekit: default pipeline (prune + distill + export + int8) from the baseline weights")
    ek_recipe = baseline.recipe_for(
        model, args.data, args.quick, sets, **{"model.weights": str(ckpt), "run.output": str(work / "edgekit")}
    )
    run_dir = ""
    try:
        art = run_edgekit(ek_recipe)
        run_dir = str(art.run_dir)
        int8, fp32 = art[Role.INT8_ONNX], art[Role.ONNX]
        files["edgekit"] = int8.path
        info["edgekit"] = {"macs": int8.macs, "seconds": stage_seconds(art, ("validate",))}
        files["edgekit-fp32"] = fp32.path
        info["edgekit-fp32"] = {"macs": fp32.macs, "seconds": stage_seconds(art, ("validate", "quantize"))}
    except Exception as exc:  # any failure: the row says what failed; the peers still run
        traceback.print_exc()
        info["edgekit"] = {"error": _error(exc)}

    jobs = {
        "torch-pruning": lambda: peers.torch_pruning(
            base_model,
            data,
            recipe.prune.ratio,
            recipe.distill,
            lambda m, p: baseline.export_onnx(m, data, recipe, p),
            work / "torch_pruning.onnx",
        ),
        "ort-quantize-static": lambda: peers.ort_quantize_static(
            files["baseline-fp32"], calib, recipe.quantize.calib_batch, base_macs, work / "ort_quantize_static.onnx"
        ),
        "nncf": lambda: peers.nncf_ptq(files["baseline-fp32"], calib, base_macs, work / "nncf.onnx"),
    }
    for method, job in jobs.items():
        step(f"{method}")
        try:
            made = job()
            files[method], info[method] = made.path, {"macs": made.macs, "seconds": made.seconds}
        except Exception as exc:  # a peer that fails gets a row that says why, never a made-up number
            if method != "nncf" or peers.nncf_available() is None:
                traceback.print_exc()
            info[method] = {"error": _error(exc)}
            step(f"{method} failed: {info[method]['error']}")

    step(
        f"measure {len(files)} ONNX files: accuracy on {len(data.val)} validation images, then timing in "
        f"{timing.rounds} interleaved rounds"
    )
    images, labels = baseline.validation_set(data)
    measured = measure(files, images, labels, timing)
    from edgekit.fileio import size_mb

    rows = []
    for method in ["edgekit", "torch-pruning", "ort-quantize-static", "nncf", "edgekit-fp32", "baseline-fp32"]:
        if method not in info:
            continue
        if "error" in info[method]:
            rows.append(table.row(method, error=info[method]["error"]))
            continue
        rows.append(
            table.row(
                method,
                **measured[method],
                macs=info[method]["macs"],
                size_mb=round(size_mb(files[method]), 3),
                seconds=round(info[method]["seconds"], 1),
            )
        )
    res = table.result(model, data_name, measured["baseline-fp32"]["top1"], rows)
    meta = {
        "baseline": _baseline_text(recipe, train_stats, ckpt),
        "setup": f"{versions()}; {timing.threads} intra-op thread, {timing.rounds} rounds, >= {timing.min_seconds}s "
        f"per row and batch size; {len(calib)} calibration images (seeded, training split) for every int8 row; "
        f"{len(data.val)} validation images",
        "notes": _notes(model, recipe, run_dir, len(calib)) + _overrides(sets, data),
        "edgekit_run": run_dir,
        "train": train_stats,
        "bars": table.bars(res),
    }
    return res, meta


def _baseline_text(recipe, stats: dict, ckpt: Path) -> str:
    t = recipe.train
    how = (
        "reused from edgekit's baseline cache"
        if stats.get("cached")
        else f"trained here in {stats.get('seconds', 0):,.0f}s"
    )
    return f"edgekit train stage, {t.epochs} epochs, {t.optimizer} lr {t.lr}, {how}"


def _shown(path: Path) -> str:
    """`path` relative to the repository where it lies inside it: result files name no machine's folders."""
    repo = Path(__file__).resolve().parent.parent
    try:
        return str(path.resolve().relative_to(repo))
    except ValueError:
        return str(path)


def _alpha_end(distill) -> str:
    end = getattr(distill, "alpha_end", None)
    return "" if end is None or end == distill.alpha else f" -> {end:g} over the run"


def _notes(model: str, recipe, run_dir: str, n_calib: int) -> list[str]:
    d, q = recipe.distill, recipe.quantize
    budget = f"{d.epochs} epochs, {d.optimizer} lr {d.lr}, batch {d.batch_size}"
    return [
        f"edgekit: `edgekit compress {model} --prune {recipe.prune.ratio} --int8 --weights <baseline>`"
        f" (recipe: {baseline.recipe_source(model)}): prune {recipe.prune.ratio} ({recipe.prune.importance}, "
        f"nearest round_to {recipe.prune.round_to}), "
        f"KD {budget} (T {d.temperature}, alpha {d.alpha}{_alpha_end(d)}), int8 {q.calibration} on {n_calib} "
        "images; seconds = its stages "
        f"without validate. Run folder: {run_dir or 'n/a'}",
        "edgekit-fp32: the same run's model.onnx (pruned + distilled, before int8); seconds without quantize",
        f"torch-pruning: MagnitudePruner(GroupMagnitudeImportance(), pruning_ratio={recipe.prune.ratio}, ignored: "
        "the classifier and the zoo's pruning_ignored_layers() (ShuffleNet v2's shuffle-crossing convs, without "
        "which torch-pruning's split handler raises a TypeError), "
        f"no round_to), fine-tuned with cross-entropy for the same budget ({budget}), fp32 ONNX",
        "ort-quantize-static: quantize_static(baseline.onnx, out, reader) with every argument at its default (QDQ, "
        "S8S8, "
        "per-tensor, MinMax)",
        "nncf: nncf.quantize(onnx_model, nncf.Dataset(one image per item), subset_size=<calibration images>), NNCF "
        "defaults otherwise",
        "baseline-fp32: the trained baseline exported to ONNX (every ONNX file here is written by edgekit's exporter: "
        "TorchScript export + onnxsim)",
    ]


def _overrides(sets: dict, data) -> list[str]:
    """The --set values of this run (the seed's own keys aside) and the data they give, for the notes."""
    given = {k: v for k, v in sets.items() if k not in SEEDED}
    if not given:
        return []
    shown = " ".join(f"--set {k}={v}" for k, v in given.items())
    side = data.input_size[-1]
    return [f"overrides for every row: {shown} ({len(data.train)} training images at {side}x{side} px)"]


def _sets(items: list[str]) -> dict:
    import yaml

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise EdgekitError(f"--set {item!r} is not KEY=VALUE: write e.g. --set distill.epochs=2")
        out[key] = yaml.safe_load(value)
    return out


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/compare.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--models",
        default="mobilenet_v3,shufflenet_v2_x1_0",
        help="comma-separated zoo models (default mobilenet_v3,shufflenet_v2_x1_0)",
    )
    p.add_argument("--data", default="fashion_mnist", help="data set (default fashion_mnist, edgekit's default)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: the shipped 1,500-image slice, 1 epoch, 64 calibration images, token timing",
    )
    p.add_argument(
        "--out", help="folder for the result files (default bench/results, bench/results/quick with --quick)"
    )
    p.add_argument(
        "--work", default="artifacts/bench", help="folder for the models each row makes (default artifacts/bench)"
    )
    p.add_argument(
        "--seeds",
        help="comma-separated seeds; each trains its own baseline and runs every row from it (default 0,1,2; "
        "0 with --quick)",
    )
    p.add_argument(
        "--reuse-seeds",
        action="store_true",
        help="take a seed's result from <out>/seeds/ when an earlier run of the same settings left it there",
    )
    p.add_argument("--rounds", type=int, help="interleaved timing rounds (default 10)")
    p.add_argument("--min-seconds", type=float, help="minimum timed seconds per row and batch size (default 5)")
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override an edgekit recipe value for every model (the peers' fine-tuning budget follows distill.*)",
    )
    args = p.parse_args(argv)
    try:
        args.seeds = sorted({int(s) for s in (args.seeds or ("0" if args.quick else "0,1,2")).split(",") if s.strip()})
    except ValueError:
        p.error(f"--seeds {args.seeds!r} is not a comma-separated list of integers: write e.g. --seeds 0,1,2")
    if not args.seeds:
        p.error("--seeds is empty: write e.g. --seeds 0,1,2")
    args.out = args.out or str(baseline.REPO / "bench" / "results" / ("quick" if args.quick else ""))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    timing = QUICK_TIMING if args.quick else Timing()
    if args.rounds:
        timing = replace(timing, rounds=args.rounds)
    if args.min_seconds is not None:
        timing = replace(timing, min_seconds=args.min_seconds)
    try:
        sets = _sets(args.sets)
        for model in [m.strip() for m in args.models.split(",") if m.strip()]:
            bench_model(model, args, sets, timing)
    except EdgekitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
