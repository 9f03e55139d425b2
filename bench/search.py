"""Latency-aware search against uniform pruning, per model: does a searched per-layer model beat uniform
`--prune 0.3` at the same measured latency after the same fine-tune budget, and do GA and PSO beat random
search at the same number of evaluations? Writes bench/results/search/<model>_<data>.json (rows in the
peer benchmark's form: method, top1, latency_ms {p50, p90, p99}, throughput_ips) and SEARCH.md.

Every row is edgekit's whole pipeline (`edgekit compress` / `edgekit search` through the Python API) from
the same trained baseline, with the same distillation epochs, int8 off (the comparison is the pruned
architecture). The searches' latency target is the uniform model's latency as a fraction of the unpruned
model's (ONNX Runtime CPU, batch 1, 1 thread, timed against the unpruned model in alternating slices:
search.target_latency_ratio), so the searched models are asked to be no slower than uniform. Afterwards
every row's model.onnx is measured in the same interleaved rounds (bench/timing.py), which is what the
within-5% check reads.

    python bench/search.py                                  # mobilenet_v3 and shufflenet_v2_x1_0
    python bench/search.py --quick --models lenet5          # smoke run on the shipped slice
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import baseline
from bench.ablation import summary
from bench.timing import QUICK_TIMING, Timing, measure
from edgekit.artifact import Role
from edgekit.envinfo import cpu_features
from edgekit.fileio import atomic_write_json, atomic_write_text

METHODS = ("uniform", "ga", "pso", "random")
SEARCHED = ("ga", "pso", "random")
SAME_LATENCY = 0.05  # the searched model counts as "at the same latency" within 5% of uniform's p50
# The searches' latency settings (their defaults, stated so the uniform target is timed the same way).
WINDOW_S, WARMUP_S, MIN_RUNS, REFERENCE_S = 1.0, 0.1, 20, 2.0
TIMING = {
    "latency_window_s": WINDOW_S,
    "latency_warmup_s": WARMUP_S,
    "latency_min_runs": MIN_RUNS,
    "reference_latency_s": REFERENCE_S,
}


def say(model: str, start: float, text: str) -> None:
    print(f"[search-bench {model} +{time.perf_counter() - start:,.0f}s] {text}", flush=True)


def uniform_latency(base, recipe, data, seed: int) -> tuple[float, float]:
    """The uniform model's p50 as the search measures it (and the unpruned reference's p50)."""
    from edgekit.search.latency import LatencyMeter
    from edgekit.stages.prune import prune_model

    pruned = prune_model(base, recipe.prune, data.input_size, data).eval()
    meter = LatencyMeter(data.input_size, WINDOW_S, WARMUP_S, MIN_RUNS, recipe.export.opset, seed)
    reference = meter.set_reference(base, REFERENCE_S)
    # the median of three interleaved measurements: one burst of load from elsewhere set a target of 0.92
    # of the unpruned latency where the uniform model runs at about 0.6
    return round(statistics.median(meter(pruned, window_s=2.0) for _ in range(3)), 4), reference


def pipeline_row(recipe, method: str) -> dict:
    from edgekit import pipeline

    start = time.perf_counter()
    art = pipeline.run(recipe)
    stages = {r.name: r for r in art.history}
    out = {
        "method": method,
        "run_dir": str(art.run_dir),
        "onnx": str(art[Role.ONNX].path),
        "macs": art[Role.ONNX].macs,
        "params": art[Role.ONNX].params,
        "seconds": round(time.perf_counter() - start, 1),
    }
    searched = stages.get("search")
    if searched is not None and "skipped" not in searched.metrics:
        m = searched.metrics
        result = json.loads((art.run_dir / m["files"]["result"]).read_text())
        target = result["target"]["target_latency_ms"]  # the ratio applied to the search's own reference
        feasible = [r["proxy_top1"] for r in result["evaluated"] if r["latency_ms"] <= target]
        out["search"] = {
            "seconds": m["search_cost"]["seconds"],
            "evaluations": m["evaluations"],
            "cache_hits": m["search_cost"]["cache_hits"],
            "proxy_top1": m["chosen"]["proxy_top1"],
            "search_latency_ms": m["chosen"].get("final_latency_ms"),
            "best_proxy_at_budget": max(feasible, default=0.0),  # the best feasible candidate the search found
            "fill_seconds": (m.get("fill") or {}).get("seconds", 0.0),
            "grown": m["chosen"].get("grown_from") is not None,  # the fill grew the chosen candidate
        }
    return out


def measure_rows(rows: list[dict], data, timing: Timing) -> None:
    """Top-1 on the whole validation split and latency/throughput, all files in the same interleaved rounds
    (bench/timing.py, as every bench row is measured)."""
    images, labels = baseline.validation_set(data)
    files = {f"{r['method']} seed {r['seed']}": Path(r["onnx"]) for r in rows}
    for row, got in zip(rows, measure(files, images, labels, timing).values(), strict=True):
        row.update(top1=got["top1"], latency_ms=got["latency_ms"], throughput_ips=got["throughput_ips"])


def aggregate(rows: list[dict]) -> dict[str, dict]:
    """Per method over seeds: top-1 and p50 summaries, search cost means."""
    out: dict[str, dict] = {}
    for method in METHODS:
        mine = [r for r in rows if r["method"] == method]
        if not mine:
            continue
        agg = {
            "top1": summary([r["top1"] for r in mine]),
            "latency_ms_p50": summary([r["latency_ms"]["p50"] for r in mine]),
            "macs": round(statistics.fmean(r["macs"] for r in mine)),
        }
        searched = [r["search"] for r in mine if "search" in r]
        if searched:
            agg["search_seconds"] = round(statistics.fmean(s["seconds"] for s in searched), 1)
            agg["evaluations"] = round(statistics.fmean(s["evaluations"] for s in searched), 1)
            agg["best_proxy_at_budget"] = summary([s["best_proxy_at_budget"] for s in searched])
            agg["fill_seconds"] = round(statistics.fmean(s.get("fill_seconds", 0.0) for s in searched), 1)
            agg["grown"] = sum(bool(s.get("grown")) for s in searched)
        out[method] = agg
    return out


def _call(mine: dict, ref: dict) -> str:
    """better / worse when the means differ by more than the larger spread over seeds, else a tie; with
    one seed there is no spread to judge by."""
    if len(mine["runs"]) < 2 or len(ref["runs"]) < 2:
        return "one seed: no verdict"
    diff, margin = mine["mean"] - ref["mean"], max(mine["spread"], ref["spread"])
    return "tie" if abs(diff) <= margin else ("better" if diff > 0 else "worse")


def _speed(ratio: float) -> str:
    if ratio > 1 + SAME_LATENCY:
        return f"{(ratio - 1) * 100:.0f}% slower"
    return "same latency" if ratio >= 1 - SAME_LATENCY else f"{(1 - ratio) * 100:.0f}% faster"


def verdicts(agg: dict[str, dict]) -> dict[str, str]:
    """Each searched method against uniform (top-1, and its p50 against uniform's: within 5% is the same
    latency), and GA / PSO against random (best feasible proxy top-1 found in the same evaluations)."""
    out = {}
    uni = agg.get("uniform")
    for method in SEARCHED:
        mine = agg.get(method)
        if not mine or not uni:
            continue
        ratio = mine["latency_ms_p50"]["mean"] / uni["latency_ms_p50"]["mean"]
        diff = mine["top1"]["mean"] - uni["top1"]["mean"]
        out[f"{method} vs uniform"] = (
            f"top-1 {diff * 100:+.2f} points ({_call(mine['top1'], uni['top1'])}), p50 x{ratio:.3f} ({_speed(ratio)})"
        )
    rnd = agg.get("random")
    for method in ("ga", "pso"):
        mine = agg.get(method)
        if mine and rnd:
            a, b = mine["best_proxy_at_budget"], rnd["best_proxy_at_budget"]
            out[f"{method} vs random"] = (
                f"best feasible proxy top-1 found {(a['mean'] - b['mean']) * 100:+.2f} points ({_call(a, b)})"
            )
    return out


def bench_model(model: str, args, timing: Timing) -> dict:
    start = time.perf_counter()
    # the distillation epochs are not a baseline setting: the cached baseline stays the one both benches use
    kd = {"distill.epochs": args.distill_epochs} if args.distill_epochs and not args.quick else {}
    sets = {**baseline.search_sets(args.train_limit), **kd}
    recipe = baseline.recipe_for(model, args.data, args.quick, sets)
    data = baseline.dataset(recipe)
    work = Path(args.work) / f"search_{model}_{recipe.data.name}{'-quick' if args.quick else ''}"
    say(model, start, f"baseline: {recipe.train.epochs} epochs (edgekit's train stage and baseline cache)")
    ckpt, base, _ = baseline.trained_baseline(recipe, data, work)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows: list[dict] = []
    targets = {}
    for seed in seeds:
        uniform_ms, reference = uniform_latency(base, recipe, data, seed)
        ratio = round(uniform_ms / reference, 4)
        targets[seed] = {"uniform_ms": uniform_ms, "reference_ms": round(reference, 4), "target_latency_ratio": ratio}
        say(model, start, f"seed {seed}: uniform --prune {recipe.prune.ratio} measures {uniform_ms} ms against the "
            f"unpruned {reference:.4f} ms: the searches' target is {ratio} of the unpruned latency")  # fmt: skip
        common = {"model.weights": str(ckpt), "distill.seed": seed}
        for method in METHODS:
            if method == "uniform":
                over = {**sets, **common, "run.output": str(work / method)}
            else:
                over = {
                    **sets, **common, "run.output": str(work / method), "prune.ratio": 0.0,
                    "search.algorithm": method, "search.target_latency_ratio": ratio, "search.seed": seed,
                    "search.budget_evals": args.budget_evals, **{f"search.{k}": v for k, v in TIMING.items()},
                    **({"search.proxy_images": 200, "search.bn_images": 100} if args.quick else {}),
                }  # fmt: skip
            say(model, start, f"seed {seed}: {method}")
            row = pipeline_row(baseline.recipe_for(model, args.data, args.quick, over), method)
            rows.append({**row, "seed": seed})
    if args.merge:  # earlier seeds' rows join, and every row is measured again in the same rounds
        kept, old_targets = earlier_rows(Path(args.out_dir) / f"{model}_{recipe.data.name}.json", seeds)
        rows, targets = kept + rows, {**old_targets, **targets}
    say(model, start, f"measure {len(rows)} model.onnx files in the same interleaved rounds")
    measure_rows(rows, data, timing)
    agg = aggregate(rows)
    base_top1 = round(float(baseline_top1(base, data)), 4)
    return {
        "model": model,
        "data": recipe.data.name,
        "baseline_top1": base_top1,
        "rows": [{k: v for k, v in r.items() if k != "onnx"} for r in rows],
        "seeds": sorted({r["seed"] for r in rows}),
        "summary": agg,
        "verdicts": verdicts(agg),
        "targets": targets,
        "setup": (
            f"{len(data.train)} training images, {len(data.val)} validation images; every row: the same baseline "
            f"({recipe.train.epochs} epochs), KD {recipe.distill.epochs} epochs, fp32 model.onnx; uniform = prune "
            f"{recipe.prune.ratio} ({recipe.prune.importance}, round_to {recipe.prune.round_to}); searches: "
            f"{args.budget_evals} evaluations each, target = uniform's p50 as a fraction of the unpruned model's "
            "(search.target_latency_ratio: each search applies it to its own timing of the unpruned model; "
            f"candidates timed over {WINDOW_S} s windows); timing: "
            f"{timing.threads} thread, {timing.rounds} interleaved rounds; CPU flags {cpu_features()}"
        ),
    }


def earlier_rows(path: Path, seeds: list[int]) -> tuple[list[dict], dict]:
    """The rows (and latency targets) of other seeds in an earlier result, whose run folders still hold
    their model.onnx; they are measured again beside the new rows."""
    if not path.is_file():
        return [], {}
    old = json.loads(path.read_text())
    rows = [
        {**r, "onnx": str(Path(r["run_dir"]) / "model.onnx")}
        for r in old["rows"]
        if r["seed"] not in seeds and (Path(r["run_dir"]) / "model.onnx").is_file()
    ]
    targets = {int(k): v for k, v in old.get("targets", {}).items() if int(k) not in seeds}
    return rows, targets


def baseline_top1(model, data) -> float:
    from edgekit.training import predict

    logits = predict(model, data.val, data)
    return (logits.argmax(1) == data.val.labels).float().mean().item()


def _fill_text(agg: dict) -> str:
    """Mean seconds of the fill (search/fill.py) and how many seeds' choices it grew."""
    if "fill_seconds" not in agg:
        return "-"
    return f"{agg['fill_seconds']} ({agg['grown']}/{len(agg['top1']['runs'])})"


def markdown(res: dict) -> str:
    seeds = ", ".join(str(x) for x in res.get("seeds", []))
    lines = [f"## {res['model']} on {res['data']}", "", f"{res['setup']}; seeds {seeds}", ""]
    lines += [
        "| method | top-1 mean ± std | p50 ms (mean) | MACs | search s | evaluations | best feasible proxy "
        "| fill s (grown) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for method, a in res["summary"].items():
        best = a.get("best_proxy_at_budget")
        best_text = f"{best['mean'] * 100:.2f}" if best else "-"
        lines.append(
            f"| {method} | {a['top1']['mean'] * 100:.2f} ± {a['top1']['std'] * 100:.2f} | "
            f"{a['latency_ms_p50']['mean']:.4f} | {a['macs']:,} | {a.get('search_seconds', '-')} | "
            f"{a.get('evaluations', '-')} | {best_text} | {_fill_text(a)} |"
        )
    lines += ["", f"Baseline top-1 {res['baseline_top1'] * 100:.2f}%."]
    lines += [f"- {k}: {v}" for k, v in res["verdicts"].items()]
    return "\n".join(lines) + "\n"


def own_results(out: Path) -> list[Path]:
    """This bench's result files in `out`, not bench/search_algorithms.py's beside them."""
    return [f for f in sorted(out.glob("*.json")) if not f.name.startswith("algorithms_")]


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/search.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--models", default="mobilenet_v3,shufflenet_v2_x1_0", help="comma-separated zoo models")
    p.add_argument("--data", default="fashion_mnist")
    p.add_argument("--quick", action="store_true", help="smoke run: the shipped slice, 1 epoch, token timing")
    p.add_argument("--seeds", default="0,1", help="comma-separated seeds (search and distillation; default 0,1)")
    p.add_argument("--budget-evals", type=int, default=60, help="evaluations per search (default 60)")
    p.add_argument(
        "--distill-epochs",
        type=int,
        default=3,
        help="KD epochs for every row (default 3; 0: the model's recipe; --quick keeps its 1)",
    )
    p.add_argument("--train-limit", type=int, default=12000, help="training images (default 12000; 0 = all)")
    p.add_argument("--out", help="folder for the results (default bench/results/search, .../quick with --quick)")
    p.add_argument("--work", default="artifacts/bench", help="folder for the run folders (default artifacts/bench)")
    p.add_argument(
        "--merge",
        action="store_true",
        help="add these seeds to an earlier result (its other seeds' models are measured again with the new ones)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    out = Path(args.out or ("bench/results/search/quick" if args.quick else "bench/results/search"))
    args.out_dir = out
    timing = QUICK_TIMING if args.quick else Timing(rounds=10, min_seconds=3.0)
    for model in args.models.split(","):
        res = bench_model(model, args, timing)
        path = out / f"{model}_{res['data']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, res)
        print(markdown(res), flush=True)
    # every model's result in the folder, also those of earlier invocations (one model per run, say)
    parts = [markdown(json.loads(f.read_text())) for f in own_results(out)]
    atomic_write_text(out / "SEARCH.md", "# Latency-aware search vs uniform pruning\n\n" + "\n".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
