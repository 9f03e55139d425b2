"""CPU latency at a real resolution: a shipped recipe at 160-224 px (by default EfficientNet-Lite0 at 224,
recipes/efficientnet_lite0_fashion_mnist_224px.yaml) run end to end by edgekit's pipeline, and the figures
its validate stage measured for every file it made (top-1 on the recipe's validation images; ONNX Runtime
p50 at batch 1 and img/s at batch 32, one intra-op thread, all files timed in alternating rounds).
Written to bench/results/resolution/<recipe>.json and RESOLUTION.md beside it.

    python bench/resolution.py                      # make bench runs it after compare.py
    python bench/resolution.py --quick              # smoke run: 256 training and 128 validation images
    python bench/resolution.py --recipe recipes/X.yaml --set prune.ratio=0.5
    python bench/resolution.py --speed              # issue 14's rows: SPEED_ROWS on recipes/speed_224px.yaml
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.compare import _sets, versions
from edgekit.fileio import atomic_write_json, atomic_write_text
from edgekit.gates import GateFailed
from edgekit.recipe import load_recipe

REPO = Path(__file__).resolve().parent.parent
DEFAULT_RECIPE = REPO / "recipes" / "efficientnet_lite0_fashion_mnist_224px.yaml"
QUICK = {"data.train_limit": 256, "validate.val_images": 128, "validate.min_seconds": 0.5, "validate.rounds": 2}
SPEED_RECIPE = REPO / "recipes" / "speed_224px.yaml"
SPEED_NOTE = (
    "Speed only: the weights trained one epoch on 512 images, so top-1 means nothing here; latency and "
    "throughput do not depend on the weights' values."
)
# MobileNet-class models at 224 px and ResNet18 at 160 px: speed figures (the recipe trains for minutes).
SPEED_ROWS = [("mobilenet_v3_large", 224), ("efficientnet_b0", 224), ("ghostnet", 224), ("resnet18", 160)]


def rows_of(report: dict) -> list[dict]:
    """The ONNX Runtime CPU rows of a run's report.json, with the columns this bench prints."""
    out = []
    for r in report["results"]:
        if r.get("backend") not in ("onnxruntime", "openvino") or not r.get("latency_ms"):
            continue
        k = r.get("kernels")
        out.append(
            {
                "artifact": r["artifact"],
                "backend": r["backend"],
                "precision": r.get("precision"),
                "params": r.get("params"),
                "macs": r.get("macs"),
                "size_mb": r.get("size_mb"),
                "top1": r.get("top1"),
                "latency_ms_p50": r["latency_ms"]["p50"],
                "throughput_ips": r.get("throughput_ips"),
                "gmacs": r.get("gmacs"),
                "peak_share": r.get("peak_share"),
                "int8_kernels": f"{k['int8']}/{k['int8'] + k['float']}" if k else None,
            }
        )
    return out


def _peak(report: dict) -> str | None:
    """The validate stage's measured fp32/int8 GEMM peaks, as one line."""
    v = next((s for s in report.get("stages", []) if s["name"] == "validate"), None)
    peak = v["metrics"].get("peak_gmacs") if v else None
    return f"fp32 {peak['fp32']:,.1f} / int8 {peak['int8']:,.1f} GMAC/s ({peak['how']})" if peak else None


def markdown(name: str, res: dict) -> str:
    lines = [
        f"## {name}",
        "",
        res["setup"],
        "",
        *([SPEED_NOTE, ""] if res.get("recipe", "").endswith(SPEED_RECIPE.name) else []),
        *([f"Status: {res['status']}", ""] if res.get("status", "ok") != "ok" else []),
        *([f"Measured peak: {res['peak']}", ""] if res.get("peak") else []),
        "| artifact | runtime | precision | params | MACs | size MB | top-1 | p50 ms @1 | img/s @32 | GMAC/s "
        "| % of peak | int8 kernels |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["rows"]:
        share = f"{100 * r['peak_share']:.0f}%" if r.get("peak_share") is not None else "-"
        lines.append(
            f"| {r['artifact']} | {r.get('backend', 'onnxruntime')} | {r['precision']} | {r['params']:,} "
            f"| {r['macs'] / 1e6:,.1f}M | {r['size_mb']:.2f} | {100 * r['top1']:.2f}% | {r['latency_ms_p50']:.3f} "
            f"| {r['throughput_ips']:,.0f} | {r.get('gmacs') or 0:,.1f} | {share} | {r.get('int8_kernels') or '-'} |"
        )
    return "\n".join(lines) + "\n"


def rebuild_index(folder: Path) -> Path:
    """RESOLUTION.md from every result in the folder, so one run never drops another's table."""
    parts = ["# CPU latency at real resolutions (bench/resolution.py)", ""]
    for path in sorted(folder.glob("*.json")):
        parts.append(markdown(path.stem, json.loads(path.read_text())))
    index = folder / "RESOLUTION.md"
    atomic_write_text(index, "\n".join(parts))
    return index


def _shown(path: Path) -> str:
    full = path.resolve()
    return str(full.relative_to(REPO)) if full.is_relative_to(REPO) else str(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="bench/resolution.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--recipe", type=Path, default=DEFAULT_RECIPE, help="recipe to run (default: Lite0 at 224 px)")
    p.add_argument("--quick", action="store_true", help="smoke run on few images; results go to results/quick/")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help="recipe value")
    p.add_argument("--out", type=Path, help="results folder (default bench/results/resolution[/quick])")
    p.add_argument("--work", type=Path, default=REPO / "artifacts" / "bench", help="where the run folder goes")
    p.add_argument("--name", help="result file name (default: the recipe's)")
    p.add_argument("--speed", action="store_true", help="run SPEED_ROWS (model, px) on recipes/speed_224px.yaml")
    args = p.parse_args(argv)
    if args.speed:
        for model, px in SPEED_ROWS:  # the row's model and size override any --set of the same keys
            sets = [*args.sets, f"model.name={model}", f"data.image_size={px}"]
            code = run_one(argparse.Namespace(**{**vars(args), "recipe": SPEED_RECIPE, "sets": sets,
                                                 "name": f"speed_{model}_{px}px"}))  # fmt: skip
            if code:
                return code
        return 0
    return run_one(args)


def run_one(args: argparse.Namespace) -> int:
    import edgekit

    out = args.out or REPO / "bench" / "results" / ("quick/resolution" if args.quick else "resolution")
    # keep_going: a failed accuracy check (say the int8 drop at 224 px) still leaves every file measured
    over = {**(QUICK if args.quick else {}), "gate.keep_going": True, **_sets(args.sets), "run.output": str(args.work)}
    recipe = load_recipe(args.recipe, over)
    start = time.perf_counter()
    try:
        run_dir = edgekit.run_recipe(recipe).run_dir  # as `edgekit run` does, with its progress lines
    except GateFailed as exc:  # the figures were measured all the same: report them with the failure
        print(f"note: {exc}", flush=True)
        run_dir = max((p.parent for p in args.work.glob("*/report.json")), key=lambda p: p.stat().st_mtime)
    seconds = time.perf_counter() - start
    report = json.loads((run_dir / "report.json").read_text())
    env = report.get("env", {})
    size = recipe.data.image_size
    res = {
        "recipe": _shown(args.recipe),
        "image_size": size,
        "run_dir": str(run_dir),
        "status": report["status"] + (f": {report['error']}" if report.get("error") else ""),
        "seconds": round(seconds, 1),
        "setup": (
            f"{recipe.model.name} ({args.recipe.name}) at {size} px, run end to end in {seconds / 60:.1f} min; "
            f"{versions()}; "
            f"CPU features {env.get('cpu_features', 'unknown')}; validate stage: {env.get('threads', 1)} intra-op "
            f"thread, {recipe.validate.val_images or 'all'} validation images; run folder {run_dir.name}"
        ),
        "rows": rows_of(report),
        "peak": _peak(report),
    }
    out.mkdir(parents=True, exist_ok=True)
    name = args.name or args.recipe.stem
    path = out / f"{name}.json"
    atomic_write_json(path, res)
    index = rebuild_index(out)
    print(markdown(name, res), flush=True)
    print(f"wrote {path} and {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
