"""Which recovery after pruning earns its place? Every row starts from the same trained baseline, pruned
the same way, and trains for the same budget (except the row that doubles it), over several seeds; the
table gives mean and spread of top-1 on the whole validation split and calls differences inside the
spread ties. Written to bench/results/ablation/<model>_<data>.json and ABLATION.md beside it.

    python bench/ablation.py                          # mobilenet_v3 (the demo), 3 seeds, 1 epoch per row
                                                      # on 12,000 training images (a 2-core CPU: ~35 min)
    python bench/ablation.py --epochs 3 --seeds 0,1,2,3
    python bench/ablation.py --quick                  # smoke run on the shipped slice

Rows (the recipe's distill settings unless a row says otherwise):
- ce: cross-entropy fine-tuning, no teacher (what Torch-Pruning's examples do)
- kd: logit KD, T 4, alpha 0.7 (edgekit's default)
- kd-t2-a0.9: logit KD, T 2, alpha 0.9
- kd-a0.3: logit KD, T 4, alpha 0.3 (hard labels weigh more)
- kd-schedule: alpha 1.0 -> 0.3 over the run (soft targets first, hard labels phased in)
- kd-features: kd plus feature KD (feature_weight 1.0, a learned 1x1 adapter)
- kd-long: kd for twice the epochs (the only row with another budget)
- kd-better-teacher: kd from a teacher trained for `--teacher-epochs` (the student is pruned from the
  usual baseline, so only the teacher differs)
- kd-no-crop, ce-no-crop: kd and ce without random crops (distill.augment_pad 0; the flip stays)
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from bench import baseline
from bench.compare import versions
from edgekit.envinfo import cpu_features
from edgekit.fileio import atomic_write_json, atomic_write_text

ROWS: dict[str, dict] = {
    "ce": {"enabled": False},
    "kd": {},
    "kd-t2-a0.9": {"temperature": 2.0, "alpha": 0.9},
    "kd-a0.3": {"alpha": 0.3},
    "kd-schedule": {"alpha": 1.0, "alpha_end": 0.3},
    "kd-to-labels": {"alpha": 0.7, "alpha_end": 0.0},  # the teacher early, hard labels alone at the end
    "kd-features": {"feature_weight": 1.0},
    "kd-long": {"epochs_factor": 2},
    "kd-better-teacher": {"teacher": "better"},
    "kd-no-crop": {"augment_pad": 0},
    "ce-no-crop": {"enabled": False, "augment_pad": 0},
}


# --baselines: the teacher itself, trained in the same budget (3 epochs) with other settings.
BASELINE_ROWS: dict[str, dict] = {
    "default": {},  # no random crop since the ablation below (train.augment_pad 0)
    "crop-2": {"train.augment_pad": 2},  # the earlier default
    "lr-6e-3": {"train.lr": 6e-3},
    "no-label-smoothing": {"train.label_smoothing": 0.0},
    "batch-64": {"train.batch_size": 64},
    "no-flip": {"train.augment_flip": False},
}


def top1(model: torch.nn.Module, data) -> float:
    from edgekit.training import predict

    logits = predict(model, data.val, data)  # eval mode, no_grad
    return (logits.argmax(1) == data.val.labels).float().mean().item()


def recover(pruned, teacher, data, settings: dict, seed: int) -> tuple[float, float]:
    """One row for one seed: (top-1, seconds) of the pruned model after the row's recovery."""
    from edgekit.stages import distill
    from edgekit.training import fit

    cfg = distill.Config(**{**settings, "seed": seed})
    student = copy.deepcopy(pruned)
    objective = distill.objective_for(student, teacher if cfg.enabled else None, cfg, data.input_size, len(data.train))
    start = time.perf_counter()
    fit(student, data, cfg, objective, "distill" if cfg.enabled else "finetune", extra=objective.adapter)
    return top1(student.eval(), data), time.perf_counter() - start


def summary(values: list[float]) -> dict:
    return {
        "mean": round(statistics.fmean(values), 5),
        "std": round(statistics.stdev(values), 5) if len(values) > 1 else 0.0,
        "spread": round(max(values) - min(values), 5),
        "runs": [round(v, 5) for v in values],
    }


def verdicts(rows: dict[str, dict], reference: str = "ce") -> dict[str, str]:
    """Each row against `reference`: better / worse when the mean differs by more than the larger of the
    two spreads (max - min over seeds), else a tie."""
    ref = rows[reference]
    out = {}
    for name, r in rows.items():
        if name == reference:
            continue
        diff = r["mean"] - ref["mean"]
        margin = max(r["spread"], ref["spread"])
        out[name] = "tie" if abs(diff) <= margin else ("better" if diff > 0 else "worse")
    return out


def markdown(res: dict, name: str = "") -> str:
    """One result's table; `name` (the result file's --name suffix) tells results of one model apart."""
    label = f" ({name.lstrip('_')})" if name else ""
    lines = [f"## {res['model']} on {res['data']}{label}", "", res["setup"], ""]
    lines += [
        "| row | what | epochs | top-1 mean ± std | spread | vs ce | seconds/run |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    for name, r in res["rows"].items():
        verdict = res["verdicts"].get(name, "reference")
        diff = (r["mean"] - res["rows"]["ce"]["mean"]) * 100
        vs = "reference" if name == "ce" else f"{diff:+.2f} ({verdict})"
        lines.append(
            f"| {name} | {r['what']} | {r['epochs']} | {r['mean'] * 100:.2f} ± {r['std'] * 100:.2f} | "
            f"{r['spread'] * 100:.2f} | {vs} | {r['seconds']:.0f} |"
        )
    better = res["better_teacher_top1"]
    lines += ["", f"Baseline (the teacher of every kd row but one): {res['baseline_top1'] * 100:.2f}%; "
              + (f"better teacher: {better * 100:.2f}%; " if better is not None else "")
              + f"pruned, before recovery: {res['pruned_top1'] * 100:.2f}%.", ""]  # fmt: skip
    return "\n".join(lines)


def describe(name: str, settings: dict, teacher_epochs: int) -> str:
    crops = ", no random crop" if settings.get("augment_pad") == 0 else ""
    if not settings.get("enabled", True):
        return "cross-entropy fine-tune" + crops
    t, a = settings.get("temperature", 4.0), settings.get("alpha", 0.7)
    text = f"KD T {t:g}, alpha {a:g}"
    if "alpha_end" in settings:
        text += f" -> {settings['alpha_end']:g}"
    if settings.get("feature_weight"):
        text += f", feature KD {settings['feature_weight']:g}"
    if name == "kd-better-teacher":
        text += f", teacher trained {teacher_epochs} epochs"
    return text + crops


def setting(args):
    """The training-image limit, the recipe, its data and the work folder every mode starts from."""
    limit = {"data.train_limit": args.train_limit} if args.train_limit else {}
    recipe = baseline.recipe_for(args.model, args.data, args.quick, limit)
    work = Path(args.work) / f"ablation_{args.model}_{recipe.data.name}{'-quick' if args.quick else ''}"
    return limit, recipe, baseline.dataset(recipe), work


def run(args) -> Path:
    from edgekit.metrics import count_macs
    from edgekit.stages.prune import prune_model

    limit, recipe, data, work = setting(args)
    print(f"[ablation] baseline: {recipe.train.epochs} epochs (edgekit's train stage and baseline cache)", flush=True)
    _, base_model, _ = baseline.trained_baseline(recipe, data, work)
    chosen = [name for name in ROWS if not args.rows or name in args.rows.split(",")]
    better = None
    if "kd-better-teacher" in chosen:
        better_recipe = baseline.recipe_for(
            args.model, args.data, args.quick, {**limit, "train.epochs": args.teacher_epochs}
        )
        print(f"[ablation] better teacher: {args.teacher_epochs} epochs, otherwise the same recipe", flush=True)
        _, better, _ = baseline.trained_baseline(better_recipe, data, work / "better")
    pruned = prune_model(base_model, recipe.prune, data.input_size, data).eval()
    d = recipe.distill
    common = {k: getattr(d, k) for k in ("lr", "batch_size", "optimizer", "weight_decay", "warmup_epochs")}
    common |= {"augment_pad": d.augment_pad, "augment_flip": d.augment_flip}
    results: dict[str, dict] = {}
    seeds = [int(s) for s in args.seeds.split(",")]
    for name in chosen:
        row = ROWS[name]
        settings = {k: v for k, v in row.items() if k not in ("epochs_factor", "teacher")}
        epochs = args.epochs * row.get("epochs_factor", 1)
        teacher = better if row.get("teacher") == "better" else base_model
        accs, secs = [], []
        for seed in seeds:
            acc, sec = recover(pruned, teacher, data, {**common, **settings, "epochs": epochs}, seed)
            accs.append(acc)
            secs.append(sec)
            print(f"[ablation] {name} seed {seed}: top-1 {acc * 100:.2f}% in {sec:.0f}s", flush=True)
        results[name] = {
            **summary(accs),
            "what": describe(name, settings, args.teacher_epochs),
            "epochs": epochs,
            "seconds": round(statistics.fmean(secs), 1),
        }
    res = {
        "model": args.model,
        "data": recipe.data.name,
        "baseline_top1": round(top1(base_model, data), 5),
        "better_teacher_top1": round(top1(better, data), 5) if better is not None else None,
        "pruned_top1": round(top1(pruned, data), 5),
        "macs": {"baseline": count_macs(base_model, data.input_size), "pruned": count_macs(pruned, data.input_size)},
        "seeds": seeds,
        "rows": results,
        "verdicts": verdicts(results) if "ce" in results else {},
        "setup": (
            f"{versions()} ({cpu_features()}); prune {recipe.prune.ratio} ({recipe.prune.importance}, "
            f"round_to {recipe.prune.round_to}); "
            f"every row {args.epochs} epoch(s) of {d.optimizer} lr {d.lr} batch {d.batch_size} (cosine, warm-up "
            f"{d.warmup_epochs}) on {len(data.train)} training images unless it says otherwise; top-1 on "
            f"{len(data.val)} validation images; seeds {args.seeds} (the seed sets batch order, augmentation and "
            "the adapter's init); ties: |mean difference| within the larger spread (max - min over seeds)"
        ),
    }
    out_dir = Path(args.out)
    path = out_dir / f"{args.model}_{recipe.data.name}{args.name}.json"
    atomic_write_json(path, res)
    write_tables(out_dir)
    print(markdown(res, args.name), flush=True)
    return path


def write_tables(out_dir: Path) -> Path:
    """ABLATION.md from every recovery result in `out_dir` (not the --baselines files)."""
    tables = []
    for p in sorted(out_dir.glob("*.json")):
        r = json.loads(p.read_text())
        if "better_teacher_top1" in r:
            tables.append(markdown(r, p.stem.removeprefix(f"{r['model']}_{r['data']}")))
    target = out_dir / "ABLATION.md"
    atomic_write_text(target, "# Recovery after pruning: an ablation (bench/ablation.py)\n\n" + "\n".join(tables))
    return target


def run_baselines(args) -> Path:
    """Each BASELINE_ROWS setting trained over the seeds (train.seed), in the recipe's epochs."""
    limit, recipe, data, work = setting(args)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows: dict[str, dict] = {}
    for name, sets in BASELINE_ROWS.items():
        if args.rows and name not in args.rows.split(","):
            continue
        accs, secs = [], []
        for seed in seeds:
            variant = baseline.recipe_for(args.model, args.data, args.quick, {**limit, **sets, "train.seed": seed})
            _, model, stats = baseline.trained_baseline(variant, data, work / f"baseline-{name}-{seed}")
            accs.append(top1(model, data))
            secs.append(stats["seconds"])
            print(f"[ablation] baseline {name} seed {seed}: top-1 {accs[-1] * 100:.2f}% in {secs[-1]:.0f}s", flush=True)
        rows[name] = {**summary(accs), "what": ", ".join(f"{k}={v}" for k, v in sets.items()) or "the recipe's",
                      "epochs": recipe.train.epochs, "seconds": round(statistics.fmean(secs), 1)}  # fmt: skip
    setup = f"{versions()} ({cpu_features()}); {len(data.train)} training images"
    res = {"model": args.model, "data": recipe.data.name, "seeds": seeds, "rows": rows,
           "verdicts": verdicts(rows, "default") if "default" in rows else {}, "setup": setup}  # fmt: skip
    size = f"_{len(data.train)}" if args.train_limit == 0 else ""  # the whole split: its own file
    path = Path(args.out) / f"baselines_{args.model}_{recipe.data.name}{size}.json"
    atomic_write_json(path, res)
    for name, row in rows.items():
        verdict = res["verdicts"].get(name, "reference")
        print(
            f"{name:20s} {row['mean'] * 100:.2f} ± {row['std'] * 100:.2f} (spread {row['spread'] * 100:.2f}) {verdict}"
        )
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/ablation.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--model", default="mobilenet_v3")
    p.add_argument("--data", default="fashion_mnist")
    p.add_argument("--epochs", type=int, default=1, help="recovery epochs of every row (kd-long: twice)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--teacher-epochs", type=int, default=6, help="epochs of the better teacher (default 6)")
    p.add_argument("--train-limit", type=int, default=12000, help="training images of every model (0: all)")
    p.add_argument("--rows", default="", help="comma-separated subset of the rows")
    p.add_argument("--quick", action="store_true", help="smoke run on the shipped slice")
    p.add_argument("--name", default="", help="suffix of the result file's name (keeps an earlier result)")
    p.add_argument("--baselines", action="store_true", help="train the baseline with BASELINE_ROWS' settings instead")
    p.add_argument("--out", help="results folder (default bench/results/ablation, quick/ablation with --quick)")
    p.add_argument("--work", default="artifacts/bench")
    args = p.parse_args(argv)
    args.out = args.out or str(baseline.REPO / "bench" / "results" / ("quick/ablation" if args.quick else "ablation"))
    run_baselines(args) if args.baselines else run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
