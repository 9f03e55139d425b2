"""The search algorithms alone, without latency noise: GA (uniform or step mutation), PSO and random search
under an exact MACs target, at the same number of evaluations, over seeds. Does an algorithm find a
better candidate than random search, and how soon?

bench/search.py compares them under a measured latency target, where the same candidate timed in two
searches of the same seed can land on either side of the target (its ratio to the unpruned model moved
by up to a third between searches minutes apart on this shared machine), so which algorithm wins there
says as much about the noise as about the algorithm. A MACs target is exact: every algorithm sees the
same feasible set and the same proxy scores (BatchNorm recalibration plus held-out top-1, deterministic
per seed), and all share the seed's first generation, so the seeds pair the algorithms.

Reported per algorithm: the best feasible proxy top-1 found after every generation's worth of
evaluations (mean over seeds, and each seed's gap to random search), and the validation top-1 of the
chosen candidate (finalists scored on the validation split). Search only: no distillation afterwards.
Writes bench/results/search/ALGORITHMS.md and algorithms_<model>_<data>.json.

    python bench/search_algorithms.py                       # mobilenet_v3, seeds 0-5 (about 15 minutes)
    python bench/search_algorithms.py --quick --models lenet5 --seeds 0    # smoke run on the shipped slice
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import baseline
from edgekit.envinfo import cpu_features
from edgekit.fileio import atomic_write_json, atomic_write_text
from edgekit.search import Config, run_search

VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {  # name -> (algorithm, extra search settings)
    "random": ("random", {}),
    "ga": ("ga", {}),
    "ga-step": ("ga", {"mutation": "step"}),
    "pso": ("pso", {}),
}


def best_so_far(evaluated: list[dict], target: float) -> list[float]:
    """After each evaluation, the best proxy top-1 among the feasible candidates so far (0 before any)."""
    best, out = 0.0, []
    for rec in evaluated:
        if rec["macs_fraction"] <= target:
            best = max(best, rec["proxy_top1"])
        out.append(best)
    return out


def one_search(model, data, variant: str, seed: int, args, work: Path) -> dict:
    algorithm, extra = VARIANTS[variant]
    settings: dict[str, Any] = {"fill_steps": 0, **extra}  # no fill: the algorithm's own choice
    if args.quick:
        settings |= {"proxy_images": 200, "bn_images": 100}
    start = time.perf_counter()
    res = run_search(
        model,
        data,
        target_macs=args.target_macs,
        algorithm=algorithm,
        budget_evals=args.budget_evals,
        seed=seed,
        out_dir=work / f"{variant}_seed{seed}",
        **settings,
    )
    seconds = round(time.perf_counter() - start, 1)
    curve = best_so_far(res.data["evaluated"], args.target_macs)
    chosen = res.chosen or {}
    return {
        "variant": variant,
        "seed": seed,
        "curve": curve,
        "best_proxy": curve[-1] if curve else 0.0,
        "chosen_val_top1": chosen.get("val_top1"),
        "chosen_macs_fraction": chosen.get("macs_fraction"),
        "evaluations": len(curve),
        "seconds": seconds,
    }


def checkpoints(budget: int, population: int) -> list[int]:
    return list(range(population, budget + 1, population)) or [budget]


def summarise(runs: list[dict], budget: int, population: int) -> dict:
    by = {v: {r["seed"]: r for r in runs if r["variant"] == v} for v in VARIANTS}
    seeds = sorted(by["random"])
    marks = checkpoints(budget, population)
    out: dict = {"checkpoints": marks, "variants": {}}
    for variant, mine in by.items():
        at = {n: [mine[s]["curve"][min(n, len(mine[s]["curve"])) - 1] for s in seeds] for n in marks}
        gaps = [mine[s]["best_proxy"] - by["random"][s]["best_proxy"] for s in seeds]
        vals = [mine[s]["chosen_val_top1"] for s in seeds if mine[s]["chosen_val_top1"] is not None]
        out["variants"][variant] = {
            "best_proxy_at": [round(statistics.fmean(at[n]), 4) for n in marks],  # aligned with checkpoints
            "best_proxy": [round(mine[s]["best_proxy"], 4) for s in seeds],
            "gap_to_random": [round(g, 4) for g in gaps],
            "wins_vs_random": sum(g > 0 for g in gaps),
            "losses_vs_random": sum(g < 0 for g in gaps),
            "chosen_val_top1": round(statistics.fmean(vals), 4) if vals else None,
            "seconds": round(statistics.fmean(mine[s]["seconds"] for s in seeds), 1),
        }
    return out


def markdown(res: dict) -> str:
    s = res["summary"]
    marks = s["checkpoints"]
    head = " | ".join(f"best proxy @{n}" for n in marks)
    lines = [
        f"## {res['model']} on {res['data']}",
        "",
        res["setup"],
        "",
        f"| variant | {head} | per seed (final) | gap to random per seed | wins/losses | chosen val top-1 | s |",
        "|---|" + "---:|" * len(marks) + "---|---|---:|---:|---:|",
    ]
    for name, v in s["variants"].items():
        cells = " | ".join(f"{100 * x:.2f}" for x in v["best_proxy_at"])
        per_seed = " / ".join(f"{100 * x:.1f}" for x in v["best_proxy"])
        gaps = " / ".join(f"{100 * x:+.1f}" for x in v["gap_to_random"])
        val = f"{100 * v['chosen_val_top1']:.2f}" if v["chosen_val_top1"] is not None else "-"
        lines.append(
            f"| {name} | {cells} | {per_seed} | {gaps} | {v['wins_vs_random']}/{v['losses_vs_random']} | {val} | "
            f"{v['seconds']} |"
        )
    return "\n".join(lines) + "\n"


def bench_model(model_name: str, args) -> dict:
    recipe = baseline.recipe_for(model_name, args.data, args.quick, baseline.search_sets(args.train_limit))
    data = baseline.dataset(recipe)
    work = Path(args.work) / f"search_algorithms_{model_name}_{recipe.data.name}{'-quick' if args.quick else ''}"
    _, model, _ = baseline.trained_baseline(recipe, data, work)
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = []
    for seed in seeds:
        for variant in VARIANTS:
            print(f"[{model_name}] seed {seed}: {variant}", flush=True)
            runs.append(one_search(model, data, variant, seed, args, work))
    population = Config().population  # the default, which every search here uses
    return {
        "model": model_name,
        "data": recipe.data.name,
        "runs": runs,
        "summary": summarise(runs, args.budget_evals, population),
        "setup": (
            f"{len(data.train)} training images; baseline {recipe.train.epochs} epochs; target_macs "
            f"{args.target_macs}; {args.budget_evals} evaluations per search (population {population}), no fill; "
            f"seeds {', '.join(map(str, seeds))}; proxy top-1 on held-out training images after BatchNorm "
            f"recalibration; CPU flags {cpu_features()}"
        ),
    }


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/search_algorithms.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--models", default="mobilenet_v3", help="comma-separated zoo models")
    p.add_argument("--data", default="fashion_mnist")
    p.add_argument("--quick", action="store_true", help="smoke run: the shipped slice, 1 epoch, a small proxy")
    p.add_argument("--seeds", default="0,1,2,3,4,5", help="comma-separated search seeds (default 0-5)")
    p.add_argument("--budget-evals", type=int, default=60, help="evaluations per search (default 60)")
    p.add_argument("--target-macs", type=float, default=0.5, help="fraction of the baseline MACs (default 0.5)")
    p.add_argument("--train-limit", type=int, default=12000, help="training images (default 12000; 0 = all)")
    p.add_argument("--out", help="folder for the results (default bench/results/search, .../quick with --quick)")
    p.add_argument("--work", default="artifacts/bench", help="folder for the search folders")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    out = Path(args.out or ("bench/results/search/quick" if args.quick else "bench/results/search"))
    out.mkdir(parents=True, exist_ok=True)
    for model in args.models.split(","):
        res = bench_model(model, args)
        atomic_write_json(out / f"algorithms_{model}_{res['data']}.json", res)
        print(markdown(res), flush=True)
    parts = [markdown(json.loads(f.read_text())) for f in sorted(out.glob("algorithms_*.json"))]
    atomic_write_text(out / "ALGORITHMS.md", "# Search algorithms under an exact MACs target\n\n" + "\n".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
