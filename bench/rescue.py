"""The mixed-precision rescue: a case where plain int8 exceeds --max-drop and edgekit's sensitivity
analysis brings it back, both rows measured like every other bench row.

The case is constructed (bench/unbalance.py): edgekit's own compressed model from the bench run
(model.onnx, pruned + distilled) with the channel ranges of its first ReLU blocks spread apart, the
same fp32 function (checked here), the imbalance that BN folding leaves in real networks. Then edgekit's
quantize stage runs twice on it with the same calibration images: `check_drop: false` (plain int8) and
the default `gate.max_drop: 1.0` (sensitivity analysis + mixed precision; QAT off, since an ONNX file has no
torch model to fine-tune).

    python bench/rescue.py                # after bench/compare.py (make bench runs both)
    python bench/rescue.py --quick        # after bench/compare.py --quick
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import onnx

from bench import baseline, table
from bench.timing import QUICK_TIMING, Timing, measure
from bench.unbalance import unbalance
from edgekit.artifact import Artifact, Role
from edgekit.errors import EdgekitError
from edgekit.fileio import size_mb
from edgekit.stages import quantize
from edgekit.stages.context import Context


def latest_run(work: Path) -> Path:
    runs = sorted(p for p in (work / "edgekit").glob("*/model.onnx"))
    if not runs:
        raise EdgekitError(f"no edgekit run with a model.onnx under {work / 'edgekit'}: run bench/compare.py first")
    return runs[-1].parent


def quantize_with(src: Path, folder: Path, recipe, data, max_drop) -> tuple[Path, dict, float]:
    """edgekit's quantize stage on `src`, as the pipeline calls it; returns the file, its metrics, seconds."""
    folder.mkdir(parents=True, exist_ok=True)
    art = Artifact(folder)
    art.add(Role.ONNX, src, 0, 0)
    cfg = dataclasses.replace(recipe.quantize, enabled=True, check_drop=max_drop is not None)
    recipe = dataclasses.replace(
        recipe,
        qat=dataclasses.replace(recipe.qat, mode="off"),
        gate=dataclasses.replace(recipe.gate, max_drop=max_drop or recipe.gate.max_drop),
    )
    start = time.perf_counter()
    metrics = quantize.run(art, cfg, Context(recipe, data, folder))
    return folder / "model.int8.onnx", metrics, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="bench/rescue.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", default="mobilenet_v3")
    p.add_argument("--data", default="fashion_mnist")
    p.add_argument("--quick", action="store_true", help="use the --quick bench run and token timing")
    p.add_argument("--blocks", type=int, default=2, help="ReLU blocks to unbalance (default 2)")
    p.add_argument(
        "--spread", type=float, default=16.0, help="channel scales drawn from [1/spread, spread] (default 16)"
    )
    p.add_argument("--work", default="artifacts/bench")
    p.add_argument("--out")
    args = p.parse_args(argv)
    out = Path(args.out or baseline.REPO / "bench" / "results" / ("quick" if args.quick else ""))
    try:
        recipe = baseline.recipe_for(args.model, args.data, args.quick)
        data = baseline.dataset(recipe)
        work = Path(args.work) / f"{args.model}_{recipe.data.name}{'-quick' if args.quick else ''}"
        run = latest_run(work)
        folder = work / "rescue"
        folder.mkdir(parents=True, exist_ok=True)
        proto, touched = unbalance(onnx.load(str(run / "model.onnx")), args.blocks, args.spread)
        src = folder / "unbalanced.onnx"
        onnx.save(proto, str(src))
        images, labels = baseline.validation_set(data)
        from edgekit.quant.sensitivity import logits_of

        a, b = logits_of(run / "model.onnx", images[:1000]), logits_of(src, images[:1000])
        parity = {
            "max_abs_logit_diff": float(np.abs(a - b).max()),
            "top1_agreement": float((a.argmax(1) == b.argmax(1)).mean()),
        }
        print(f"rescue: unbalanced {len(touched)} convs of {run / 'model.onnx'}; fp32 parity {parity}", flush=True)
        plain, plain_m, plain_s = quantize_with(src, folder / "plain", recipe, data, None)
        mixed, mixed_m, mixed_s = quantize_with(src, folder / "mixed", recipe, data, recipe.gate.max_drop)
        files = {
            "edgekit-fp32": run / "model.onnx",
            "unbalanced-fp32": src,
            "unbalanced-int8": plain,
            "unbalanced-mixed": mixed,
        }
        timing = QUICK_TIMING if args.quick else Timing()
        measured = measure(files, images, labels, timing)
    except EdgekitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    macs = _macs_of(run)
    seconds = {"edgekit-fp32": 0.0, "unbalanced-fp32": 0.0, "unbalanced-int8": plain_s, "unbalanced-mixed": mixed_s}
    rows = [
        table.row(m, **measured[m], macs=macs, size_mb=round(size_mb(f), 3), seconds=round(seconds[m], 1))
        for m, f in files.items()
    ]
    ref = measured["unbalanced-fp32"]["top1"]
    res = table.result(f"{args.model}-unbalanced", recipe.data.name, ref, rows)
    drop_plain, drop_mixed = (
        (ref - measured["unbalanced-int8"]["top1"]) * 100,
        (ref - measured["unbalanced-mixed"]["top1"]) * 100,
    )
    mp = mixed_m.get("mixed_precision", {})
    max_drop = recipe.gate.max_drop
    bars = [
        {
            "bar": "rescue",
            "passed": drop_plain > max_drop >= drop_mixed,
            "detail": (
                f"validation top-1 drop vs the unbalanced fp32 model (max_drop {max_drop}): "
                f"plain int8 {drop_plain:.2f} points, "
                f"mixed precision {drop_mixed:.2f} points with {len(mp.get('float_layers', []))} layers in float"
            ),
        }
    ]
    meta = {
        "baseline": "the unbalanced fp32 model; Δ top-1 is against it",
        "setup": (
            f"{timing.threads} intra-op thread, {timing.rounds} rounds; quantize: {recipe.quantize.calibration} on "
            f"{plain_m['calib_images']} training images, "
            f"held-out check on {mixed_m.get('held_out_images')} other training images"
        ),
        "bars": bars,
        "notes": [
            f"source: {run / 'model.onnx'} (edgekit's bench row before int8); "
            f"unbalanced: bench/unbalance.py, {args.blocks} ReLU blocks, spread {args.spread} ({', '.join(touched)}); "
            f"fp32 parity max |Δlogit| {parity['max_abs_logit_diff']:.2e}, "
            f"top-1 agreement {parity['top1_agreement']:.2%}",
            "unbalanced-int8: edgekit quantize stage with check_drop false (plain int8); held-out drop "
            f"{mixed_m.get('int8_drop')} points",
            f"unbalanced-mixed: the same stage with max_drop {max_drop}, qat off: "
            f"held-out drop {mp.get('drop_before')} -> {mp.get('drop_after')} points; "
            "layers kept in float: "
            + "; ".join(
                f"{f['layer']} (drop after adding it {f['why']['drop_after_adding']})"
                for f in mp.get("float_layers", [])
            ),
        ],
        "quantize_metrics": {"plain": plain_m, "mixed": mixed_m},
    }
    path = table.write(out, res, meta)
    print(table.markdown(res, meta), flush=True)
    print(f"wrote {path}", flush=True)
    return 0


def _macs_of(run: Path) -> int:
    """MACs of the edgekit model (all rows share its architecture), from the run's report."""
    import json

    report = json.loads((run / "report.json").read_text()) if (run / "report.json").is_file() else {}
    return next((r["macs"] for r in report.get("results", []) if r.get("artifact") == "model.onnx"), 0)


if __name__ == "__main__":
    sys.exit(main())
