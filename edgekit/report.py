"""The report is a pure function of the run's history: report.json, report.md and the console table."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import edgekit.envinfo as envinfo
import edgekit.jetson as jetson
import edgekit.report_html as report_html
from edgekit.artifact import Artifact, Role
from edgekit.fileio import atomic_write_json, atomic_write_text
from edgekit.report_sections import stage_sections
from edgekit.report_table import COLUMNS, table_rows

log = logging.getLogger(__name__)
# report.json's format version, its first key; `edgekit report` refuses a newer one (edgekit.report_compare).
# Bump it when a change would make an older edgekit misread a report.
SCHEMA_VERSION = 1


def build(art: Artifact, status: str = "ok", error: str | None = None) -> dict:
    info = art.info
    env = envinfo.collect(info.threads)
    return {
        "schema_version": SCHEMA_VERSION,
        "status": status,
        "error": error,
        "run_dir": str(art.run_dir),
        "model": info.model,
        "data": info.data,
        "target": info.target,
        "max_drop": info.max_drop,
        "stages": [dataclasses.asdict(r) for r in art.history],
        "results": info.results,
        "gates": info.gate_results,
        "gate_config": info.gate_config,
        "ship": info.ship,
        "resumed": info.resumed,
        "world_size": info.world_size,
        "backend": info.backend,
        "env": env,
        "notes": transfer_notes(info.transfer)
        + notes(info.results)
        + speedup_notes(info.results, info.ship)
        + jetson.warnings(env["jetson"] if isinstance(env["jetson"], dict) else None),
    }


def transfer_notes(transfer: dict | None) -> list[str]:
    if not transfer:
        return []
    return [
        f"the weights were for {transfer['checkpoint_classes']} classes: classifier {transfer['classifier']} was "
        f"re-initialised for this data's {transfer['classes']} and trained by the train stage (transfer learning)"
    ]


def notes(rows: list[dict]) -> list[str]:
    """What the table says that a reader could miss: what pruning bought, and whether int8 paid off
    against its own fp32 source (on small models it often does not: Q/DQ overhead beats int8 math)."""
    out = []
    base, model = _row_of(rows, Role.BASELINE_ONNX, "onnxruntime"), _row_of(rows, Role.ONNX, "onnxruntime")
    if base and model and base["macs"]:
        out.append(
            f"pruning kept {model['macs'] / base['macs']:.0%} of the MACs and "
            f"{model['params'] / base['params']:.0%} of the parameters; "
            f"model.onnx runs at {base['latency_ms']['p50'] / model['latency_ms']['p50']:.2f}x "
            "the baseline's batch-1 speed"
        )
    for r in rows:
        peer = Role(r["role"]).spec.peer if r["precision"] == "int8" and r.get("role") else None
        src = _row_of(rows, peer, r["backend"]) if peer else None
        if not src or src is r:
            continue
        slower = (
            [f"batch 1 ({r['latency_ms']['p50']:.3f} vs {src['latency_ms']['p50']:.3f} ms)"]
            if r["latency_ms"]["p50"] > src["latency_ms"]["p50"]
            else []
        )
        if r["throughput_ips"] < src["throughput_ips"]:
            slower.append(f"batch 32 ({r['throughput_ips']:,.0f} vs {src['throughput_ips']:,.0f} img/s)")
        if slower:
            out.append(
                f"{r['artifact']} is not faster than its fp32 source {src['artifact']} at "
                + " or ".join(slower)
                + f"; it is {src['size_mb'] / r['size_mb']:.1f}x smaller. Ship {src['artifact']} where speed matters "
                "more than size"
            )
    return out


def speedup_notes(rows: list[dict], ship: dict | None) -> list[str]:
    """The deployment rewrite's candidates and the shipped file against the fp32 baseline, in each CPU
    runtime that measured both: what the compression bought where it runs."""
    out = []
    shipped = ship["artifact"] if ship else None
    named = [n for n in (Role.REWRITTEN_INT8_ONNX.spec.file, shipped) if n]
    for backend in ("onnxruntime", "openvino"):
        base = _row_of(rows, Role.BASELINE_ONNX, backend)
        if not base:
            continue
        for name in dict.fromkeys(named):
            r = next((r for r in rows if r.get("of") == name and r["backend"] == backend), None)
            if r is None or r is base:
                continue
            what = "(shipped)" if name == shipped else "(a candidate, not shipped)"
            out.append(
                f"{name} {what} in {backend}: {base['latency_ms']['p50'] / r['latency_ms']['p50']:.2f}x the fp32 "
                f"baseline's speed at batch 1 and {r['throughput_ips'] / base['throughput_ips']:.2f}x at batch 32, "
                f"top-1 {(r['top1'] - base['top1']) * 100:+.2f} points"
            )
    return out


def _row_of(rows: list[dict], role: Role, backend: str) -> dict | None:
    """The row of `role` measured on `backend` (a role has one row per backend it was run on)."""
    return next((r for r in rows if r.get("role") == role.value and r["backend"] == backend), None)


def gate_lines(report: dict) -> list[str]:
    """The accuracy gates' verdicts (top-1 on the validation split after each stage) and what to ship."""
    gates = report.get("gates") or {}
    if not gates:
        return []
    out = [
        "## Accuracy gates",
        "",
        "| artifact | top-1 | drop vs baseline | drop vs its input | passed |",
        "|---|---:|---:|---:|---|",
    ]
    for name, g in gates.items():
        vs_input = f"{g['drop_vs_input']:+.2f} ({g['input']})" if "drop_vs_input" in g else "-"
        vs_base = f"{g['drop_vs_baseline']:+.2f}" if "drop_vs_baseline" in g else "-"
        out.append(f"| {name} | {g['top1'] * 100:.2f}% | {vs_base} | {vs_input} | {_passed(g)} |")
    ship = report.get("ship")
    out += [
        "",
        f"**Ship: {ship['artifact']}**, {ship['rule']}."
        if ship
        else "**Ship: nothing**: no artifact passed its gates.",
        "",
    ]
    return out


def _passed(gate: dict) -> str:
    if gate["passed"]:
        return "yes"
    return "no (a candidate: not shipped)" if "note" in gate else "**no**"


def gpu_timing_lines(rows: list[dict]) -> list[str]:
    """trtexec-style figures of the GPU rows: end to end (with copies) versus GPU compute alone."""
    timed = [(r["artifact"], t) for r in rows for t in r.get("gpu_timing", [])]
    if not timed:
        return []
    out = [
        "## GPU timing",
        "",
        "End to end = pinned host copy in + inference + copy out, synchronized; compute = CUDA events around the "
        "inference.",
        "",
        "| artifact | batch | CUDA graph | end-to-end p50 / p90 / p99 ms | compute p50 / p90 / p99 ms "
        "| H2D ms | D2H ms | img/s | compute img/s |",
        "|---|---:|---|---|---|---:|---:|---:|---:|",
    ]
    for name, t in timed:
        e, c = t["end_to_end_ms"], t["gpu_compute_ms"]
        out.append(
            f"| {name} | {t['batch']} | {'yes' if t['cuda_graph'] else 'no'} "
            f"| {e['p50']:.3f} / {e['p90']:.3f} / {e['p99']:.3f} "
            f"| {c['p50']:.3f} / {c['p90']:.3f} / {c['p99']:.3f} | {t['h2d_ms']:.3f} | {t['d2h_ms']:.3f} "
            f"| {t['throughput_ips']:,.0f} | {t['compute_throughput_ips']:,.0f} |"
        )
    return out + [""]


def peak_lines(report: dict) -> list[str]:
    """The machine's measured multiply-accumulate limit that the table's "% of peak" divides by."""
    validate = next((s for s in report["stages"] if s["name"] == "validate"), None)
    peak = validate["metrics"].get("peak_gmacs") if validate else None
    if not peak:
        return []
    return [
        f"GMAC/s = MACs x img/s at batch 32; % of peak = that over this machine's measured peak, fp32 "
        f"{peak['fp32']:,.1f} / int8 {peak['int8']:,.1f} GMAC/s ({peak['how']}). int8 kernels: integer "
        "convolutions and matrix products of all of them in the runtime's optimized graph.",
        "",
    ]


def markdown(report: dict) -> str:
    env = report["env"]
    lines = [f"# edgekit run: {report['model']} on {report['data']['name'] if report['data'] else '?'}", ""]
    lines += [f"Status: **{report['status']}**" + (f": {report['error']}" if report["error"] else ""), ""]
    if report["results"]:
        lines += [
            f"Latency at batch 1 and throughput at batch 32 on {env['cpu']} ({env.get('cpu_features', '?')}), "
            f"{env['threads']} threads "
            f"(PyTorch {env['torch']}, ONNX Runtime {env['onnxruntime']}, OpenVINO {env.get('openvino', '?')}). "
            "Δ top-1 in points vs the baseline.",
            "",
        ]
        lines += peak_lines(report)
        lines += ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(row) + " |" for row in table_rows(report)]
        lines.append("")
    lines += [f"- {n}" for n in report["notes"]] + ([""] if report["notes"] else [])
    lines += gate_lines(report)
    lines += gpu_timing_lines(report["results"])
    lines += ["## Stages", "", "| stage | seconds | what it did |", "|---|---|---|"]
    for s in report["stages"]:
        detail = ", ".join(f"{k}={v}" for k, v in s["metrics"].items() if not isinstance(v, dict))
        lines.append(f"| {s['name']} | {s['seconds']:.1f} | {detail} |")
    lines += ["", "## Environment", ""] + [f"- {k}: {v}" for k, v in env.items()]
    return "\n".join(lines) + "\n"


def console_table(report: dict) -> str:
    rows = [COLUMNS] + table_rows(report)
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]

    def fmt(r: list[str]) -> str:
        return "  ".join(c.rjust(w) if i >= 4 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))

    return "\n".join([fmt(rows[0]), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows[1:]])


def ship_file(report: dict, run_dir: Path) -> Path | None:
    """The file of the artifact `report` ships (report.json's `ship` and `results`), in `run_dir`; None when
    nothing ships or no result row names it."""
    ship = report.get("ship") or {}
    row = next((r for r in report.get("results", []) if r.get("artifact") == ship.get("artifact")), None)
    return run_dir / row["file"] if row else None


def write(art: Artifact, status: str = "ok", error: str | None = None) -> dict:
    report = build(art, status, error)
    atomic_write_json(art.run_dir / "report.json", report)
    atomic_write_text(art.run_dir / "report.md", markdown(report))
    atomic_write_text(art.run_dir / "report.html", report_html.render(report, stage_sections(report, art.run_dir)))
    if report["results"]:
        log.info("\n" + console_table(report))
        for n in report["notes"]:
            log.info(f"note: {n}")
        log.info(
            f"\nthreads: {report['env']['threads']}  cpu: {report['env']['cpu']} "
            f"({report['env'].get('cpu_features', '?')})  report: {art.run_dir / 'report.md'}"
        )
    return report
