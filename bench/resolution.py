"""CPU latency at a real resolution: a shipped recipe at 160-224 px (by default EfficientNet-Lite0 at 224,
recipes/efficientnet_lite0_fashion_mnist_224px.yaml) run end to end by edgekit's pipeline, and the figures
its validate stage measured for every file it made (top-1 on the recipe's validation images; ONNX Runtime
p50 at batch 1 and img/s at batch 32, one intra-op thread, all files timed in alternating rounds).
Written to bench/results/resolution/<recipe>.json and RESOLUTION.md beside it.

    python bench/resolution.py                      # make bench runs it after compare.py
    python bench/resolution.py --quick              # smoke run: 256 training and 128 validation images
    python bench/resolution.py --recipe recipes/X.yaml --set prune.ratio=0.5
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
from edgekit.recipe import load_recipe

REPO = Path(__file__).resolve().parent.parent
DEFAULT_RECIPE = REPO / "recipes" / "efficientnet_lite0_fashion_mnist_224px.yaml"
QUICK = {"data.train_limit": 256, "validate.val_images": 128, "validate.min_seconds": 0.5, "validate.rounds": 2}
COLUMNS = ("artifact", "precision", "params", "macs", "size_mb", "top1", "latency_ms_p50", "throughput_ips")


def rows_of(report: dict) -> list[dict]:
    """The ONNX Runtime CPU rows of a run's report.json, with the columns this bench prints."""
    out = []
    for r in report["results"]:
        if r.get("backend") != "onnxruntime" or not r.get("latency_ms"):
            continue
        out.append(
            {
                "artifact": r["artifact"],
                "precision": r.get("precision"),
                "params": r.get("params"),
                "macs": r.get("macs"),
                "size_mb": r.get("size_mb"),
                "top1": r.get("top1"),
                "latency_ms_p50": r["latency_ms"]["p50"],
                "throughput_ips": r.get("throughput_ips"),
            }
        )
    return out


def markdown(name: str, res: dict) -> str:
    lines = [
        f"## {name}",
        "",
        res["setup"],
        "",
        "| artifact | precision | params | MACs | size MB | top-1 | p50 ms @1 | img/s @32 |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["rows"]:
        lines.append(
            f"| {r['artifact']} | {r['precision']} | {r['params']:,} | {r['macs'] / 1e6:,.1f}M | {r['size_mb']:.2f} "
            f"| {100 * r['top1']:.2f}% | {r['latency_ms_p50']:.3f} | {r['throughput_ips']:,.0f} |"
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
    args = p.parse_args(argv)

    import edgekit

    out = args.out or REPO / "bench" / "results" / ("quick/resolution" if args.quick else "resolution")
    over = {**(QUICK if args.quick else {}), **_sets(args.sets), "run.output": str(args.work)}
    recipe = load_recipe(args.recipe, over)
    start = time.perf_counter()
    run = edgekit.run_recipe(recipe)  # as `edgekit run` does, with its progress lines
    seconds = time.perf_counter() - start
    report = run.report
    env = report.get("env", {})
    size = recipe.data.image_size
    res = {
        "recipe": _shown(args.recipe),
        "image_size": size,
        "run_dir": str(run.run_dir),
        "seconds": round(seconds, 1),
        "setup": (
            f"{args.recipe.name} at {size} px, run end to end in {seconds / 60:.1f} min; {versions()}; "
            f"CPU features {env.get('cpu_features', 'unknown')}; validate stage: {env.get('threads', 1)} intra-op "
            f"thread, {recipe.validate.val_images or 'all'} validation images; run folder {run.run_dir.name}"
        ),
        "rows": rows_of(report),
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{args.recipe.stem}.json"
    atomic_write_json(path, res)
    index = rebuild_index(out)
    print(markdown(args.recipe.stem, res), flush=True)
    print(f"wrote {path} and {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
