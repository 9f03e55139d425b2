"""The result files: <model>_<data>.json (the fixed schema), a .meta.json beside it (how it was made),
the two bars, and RESULTS.md rebuilt from every result in the folder. All written atomically."""

from __future__ import annotations

import json
import math
from pathlib import Path

from edgekit.fileio import atomic_write_json, atomic_write_text

METHODS = ("edgekit", "torch-pruning", "ort-quantize-static", "nncf")
PEERS = METHODS[1:]
ROW_KEYS = ("method", "top1", "macs", "size_mb", "latency_ms_p50", "throughput_ips", "seconds")
NUMBERS = ROW_KEYS[1:]
SEED_KEYS = ("top1_runs", "top1_spread")  # a result merged over seeds (merge_seeds) adds these to each row
TIE = 0.002  # accuracy ties: within 0.2 points, or within the seeds' spread where that is larger


def row(method: str, **values) -> dict:
    """One row with exactly the schema's keys; a failed row has None numbers and an `error`."""
    out = {k: values.get(k) for k in ROW_KEYS}
    out["method"] = method
    if values.get("error"):
        out["error"] = values["error"]
    return out


def result(model: str, data: str, baseline_top1: float, rows: list[dict]) -> dict:
    return {"model": model, "data": data, "baseline_top1": baseline_top1, "rows": rows}


def merge_seeds(runs: dict[int, dict]) -> dict:
    """One result from the same comparison run with several seeds (each seed its own baseline, recovery
    and calibration order): top-1 is the mean with its runs and spread (max - min), the other numbers
    the mean. A method that failed on any seed fails in the merged result, naming the seed."""
    seeds = sorted(runs)
    first = runs[seeds[0]]
    rows = []
    for template in first["rows"]:
        method = template["method"]
        per_seed = {s: next((r for r in runs[s]["rows"] if r["method"] == method), None) for s in seeds}
        failed = {s: (r or {}).get("error") or "no row" for s, r in per_seed.items() if r is None or r.get("error")}
        if failed:
            seed, error = next(iter(failed.items()))
            rows.append(row(method, error=error if len(seeds) == 1 else f"seed {seed}: {error}"))
            continue
        merged = row(method, **{k: _mean([r[k] for r in per_seed.values()]) for k in NUMBERS})  # type: ignore[index]
        top1s = [r["top1"] for r in per_seed.values()]  # type: ignore[index]
        merged |= {"top1_runs": top1s, "top1_spread": round(max(top1s) - min(top1s), 5)}
        rows.append(merged)
    base = _mean([runs[s]["baseline_top1"] for s in seeds])
    return {**result(first["model"], first["data"], base, rows), "seeds": seeds,
            "baseline_top1_runs": [runs[s]["baseline_top1"] for s in seeds]}  # fmt: skip


def _mean(values: list) -> float:
    return round(sum(values) / len(values), 6)


def schema_problems(res: dict) -> list[str]:
    """What is wrong with a result (empty when it matches the schema); used by the tests."""
    problems = []
    keys = {"model", "data", "baseline_top1", "rows"}
    if not keys <= set(res) <= keys | {"seeds", "baseline_top1_runs"}:
        problems.append(f"top-level keys {sorted(res)}")
    if not _finite(res.get("baseline_top1")):
        problems.append("baseline_top1 is not a finite number")
    methods = [r.get("method") for r in res.get("rows", [])]
    problems += [f"method {m} missing" for m in METHODS if m not in methods]
    for r in res.get("rows", []):
        extra = set(r) - set(ROW_KEYS) - {"error", *SEED_KEYS}
        if extra or not set(ROW_KEYS) <= set(r):
            problems.append(f"row {r.get('method')}: keys {sorted(r)}")
        elif not r.get("error") and not all(_finite(r[k]) for k in NUMBERS):
            problems.append(f"row {r['method']}: a number is missing or not finite")
    return problems


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def bars(res: dict) -> list[dict]:
    """The issue's two bars for the `edgekit` row, each with pass/fail and the numbers behind it."""
    rows = {r["method"]: r for r in res["rows"] if not r.get("error")}
    ek = rows.get("edgekit")
    peers = [rows[m] for m in PEERS if m in rows]
    if ek is None:
        return [{"bar": "edgekit row", "passed": False, "detail": "the edgekit row failed"}]
    out = []
    best = max(peers, key=lambda r: r["top1"], default=None)
    if best is None:
        out.append({"bar": "accuracy", "passed": False, "detail": "no peer row to compare with"})
    else:
        gap = (ek["top1"] - best["top1"]) * 100
        tie = _tie(ek, best)
        over = f" mean over seeds {', '.join(map(str, res['seeds']))};" if len(res.get("seeds", [])) > 1 else ""
        out.append(
            {
                "bar": "accuracy",
                "passed": gap >= -tie * 100,
                "detail": (
                    f"edgekit {ek['top1']:.2%} vs best peer {best['method']} {best['top1']:.2%} "
                    f"({gap:+.2f} points;{over} ties within {tie * 100:.2f}){_paired(ek, best)}"
                ),
            }
        )
    slower_acc = [r for r in peers if r["top1"] <= ek["top1"] + _tie(ek, r)]
    fastest = max(slower_acc, key=lambda r: r["throughput_ips"], default=None)
    if fastest is None:
        out.append(
            {
                "bar": "speed @32",
                "passed": True,
                "detail": "no peer row is as accurate as or less accurate than edgekit's, nothing to beat",
            }
        )
    else:
        ratio = ek["throughput_ips"] / fastest["throughput_ips"]
        out.append(
            {
                "bar": "speed @32",
                "passed": ratio >= 1.0,
                "detail": f"edgekit {ek['throughput_ips']:,.0f} img/s vs fastest peer of equal or lower accuracy "
                f"{fastest['method']} {fastest['throughput_ips']:,.0f} img/s (x{ratio:.2f})",
            }
        )
    failed = [m for m in PEERS if m not in rows]
    if failed:
        out.append({"bar": "note", "passed": None, "detail": f"left out of the bars (row failed): {', '.join(failed)}"})
    return out


def _paired(ek: dict, peer: dict) -> str:
    """Per-seed gaps (each seed's rows share one baseline, so these pair up), and what their signs say:
    a gap of one sign on every seed is worth saying even where the spread rule calls the means a tie."""
    a, b = ek.get("top1_runs", []), peer.get("top1_runs", [])
    if len(a) < 2 or len(a) != len(b):
        return ""
    gaps = [(x - y) * 100 for x, y in zip(a, b, strict=True)]
    side = "below on every seed" if max(gaps) < 0 else "above on every seed" if min(gaps) > 0 else "mixed signs"
    return f"; per seed {', '.join(f'{g:+.2f}' for g in gaps)}: {side}"


def _tie(a: dict, b: dict) -> float:
    """The accuracy margin called a tie: 0.2 points, or the larger seed spread of the two rows."""
    return max(TIE, a.get("top1_spread", 0.0), b.get("top1_spread", 0.0))


def _fmt(v, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def markdown(res: dict, meta: dict) -> str:
    base = res["baseline_top1"]
    lines = [
        f"## {res['model']} on {res['data']}",
        "",
        f"Baseline top-1 {base:.2%} ({meta.get('baseline', '')}).{_seeds_text(res)}",
        "",
        "| method | top-1 | Δ top-1 (points) | MACs | size MB | p50 ms @1 | img/s @32 | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["rows"]:
        if r.get("error"):
            lines.append(f"| {r['method']} | failed: {r['error']} | | | | | | |")
            continue
        drop = (r["top1"] - base) * 100
        spread = f" (spread {r['top1_spread'] * 100:.2f})" if len(r.get("top1_runs", [])) > 1 else ""
        top1 = f"{r['top1']:.2%}{spread}"
        lines.append(
            f"| {r['method']} | {top1} | {drop:+.2f} | {r['macs'] / 1e6:,.2f}M | {_fmt(r['size_mb'], '.3f')} "
            "| "
            f"{_fmt(r['latency_ms_p50'], '.3f')} | {_fmt(r['throughput_ips'], ',.0f')} | {_fmt(r['seconds'], ',.1f')} |"
        )
    lines += ["", "Bars:"]
    for b in meta.get("bars") or bars(res):  # a result may carry its own bars (bench/rescue.py)
        mark = {True: "PASS", False: "MISS", None: "note"}[b["passed"]]
        lines.append(f"- {b['bar']}: **{mark}**: {b['detail']}")
    if meta.get("notes"):
        lines += ["", "How each row was made:"] + [f"- {n}" for n in meta["notes"]]
    return "\n".join(lines) + "\n"


def _seeds_text(res: dict) -> str:
    if len(res.get("seeds", [])) < 2:
        return ""
    runs = ", ".join(f"{v:.2%}" for v in res["baseline_top1_runs"])
    return (
        f" Every figure is the mean over seeds {', '.join(map(str, res['seeds']))} (each seed trains its own "
        f"baseline, {runs}, and every row from it); top-1's spread is max - min over the seeds."
    )


def paths(out: Path, model: str, data: str, suffix: str = "") -> tuple[Path, Path]:
    """The result file and its .meta.json for one model and data set (suffix: e.g. _seed0)."""
    stem = f"{model}_{data}{suffix}"
    return out / f"{stem}.json", out / f"{stem}.meta.json"


def write(out: Path, res: dict, meta: dict, suffix: str = "") -> Path:
    res_path, meta_path = paths(out, res["model"], res["data"], suffix)
    atomic_write_json(res_path, res)
    atomic_write_json(meta_path, meta)
    write_summary(out)
    return res_path


def write_summary(out: Path) -> Path:
    """RESULTS.md from every result in `out`, so one model's run keeps the other's table."""
    parts = [
        "# edgekit against the peers' defaults",
        "",
        "Made by `python bench/compare.py` (see bench/README.md). top-1 on the whole validation split; "
        "latency and throughput in ONNX Runtime on the CPU, one intra-op thread, all rows of a model "
        "timed in the same interleaved rounds. `seconds`: wall time of the compression work from the "
        "trained baseline (baseline training and the final measurements left out).",
        "",
    ]
    for path in sorted(out.glob("*.json")):
        if path.name.endswith(".meta.json"):
            continue
        res = json.loads(path.read_text())
        meta_path = path.with_name(path.stem + ".meta.json")
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        parts.append(markdown(res, meta))
        if meta.get("setup"):
            parts.append(f"Setup: {meta['setup']}\n")
    target = out / "RESULTS.md"
    atomic_write_text(target, "\n".join(parts))
    return target
