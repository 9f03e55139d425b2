"""The report is a pure function of the run's history: report.json, report.md and the console table."""
from __future__ import annotations

import dataclasses

from edgekit import envinfo
from edgekit.artifact import Artifact
from edgekit.fileio import atomic_write_json, atomic_write_text

COLUMNS = ["artifact", "format", "precision", "backend", "params", "MACs", "size MB", "top-1", "Δ top-1", "top-5", "p50 ms", "p90 ms", "p99 ms", "img/s @32"]


def build(art: Artifact, status: str = "ok", error: str | None = None) -> dict:
    from edgekit import jetson

    env = envinfo.collect(art.info.get("threads"))
    return {
        "status": status,
        "error": error,
        "run_dir": str(art.run_dir),
        "model": art.info.get("model"),
        "data": art.info.get("data"),
        "stages": [dataclasses.asdict(r) for r in art.history],
        "results": art.info.get("results", []),
        "gates": art.info.get("gate_results", {}),
        "gate_config": art.info.get("gate_config"),
        "ship": art.info.get("ship"),
        "resumed": art.info.get("resumed", []),
        "env": env,
        "notes": notes(art.info.get("results", [])) + jetson.warnings(env["jetson"] if isinstance(env["jetson"], dict) else None),
    }


def notes(rows: list[dict]) -> list[str]:
    """What the table says that a reader could miss: what pruning bought, and whether int8 paid off
    against its own fp32 source (on small models it often does not: Q/DQ overhead beats int8 math)."""
    by_name = {r["artifact"]: r for r in rows}
    out = []
    base, model = by_name.get("baseline.onnx"), by_name.get("model.onnx")
    if base and model and base["macs"]:
        out.append(f"pruning kept {model['macs'] / base['macs']:.0%} of the MACs and {model['params'] / base['params']:.0%} of the parameters; "
                   f"model.onnx runs at {base['latency_ms']['p50'] / model['latency_ms']['p50']:.2f}x the baseline's batch-1 speed")
    for r in rows:
        src = by_name.get(r["artifact"].replace(".int8", "")) if r["precision"] == "int8" else None
        if not src or src is r:
            continue
        slower = [f"batch 1 ({r['latency_ms']['p50']:.3f} vs {src['latency_ms']['p50']:.3f} ms)"] if r["latency_ms"]["p50"] > src["latency_ms"]["p50"] else []
        if r["throughput_ips"] < src["throughput_ips"]:
            slower.append(f"batch 32 ({r['throughput_ips']:,.0f} vs {src['throughput_ips']:,.0f} img/s)")
        if slower:
            out.append(f"{r['artifact']} is not faster than its fp32 source {src['artifact']} at " + " or ".join(slower)
                       + f"; it is {src['size_mb'] / r['size_mb']:.1f}x smaller. Ship {src['artifact']} where speed matters more than size")
    return out


def gate_lines(report: dict) -> list[str]:
    """The accuracy gates' verdicts (top-1 on the validation split after each stage) and what to ship."""
    gates = report.get("gates") or {}
    if not gates:
        return []
    out = ["## Accuracy gates", "", "| artifact | top-1 | drop vs baseline | drop vs its input | passed |", "|---|---:|---:|---:|---|"]
    for name, g in gates.items():
        vs_input = f"{g['drop_vs_input']:+.2f} ({g['input']})" if "drop_vs_input" in g else "-"
        vs_base = f"{g['drop_vs_baseline']:+.2f}" if "drop_vs_baseline" in g else "-"
        out.append(f"| {name} | {g['top1'] * 100:.2f}% | {vs_base} | {vs_input} | {'yes' if g['passed'] else '**no**'} |")
    ship = report.get("ship")
    out += ["", f"**Ship: {ship['artifact']}**, {ship['rule']}." if ship else "**Ship: nothing**: no artifact passed its gates.", ""]
    return out


def gpu_timing_lines(rows: list[dict]) -> list[str]:
    """trtexec-style figures of the GPU rows: end to end (with copies) versus GPU compute alone."""
    timed = [(r["artifact"], t) for r in rows for t in r.get("gpu_timing", [])]
    if not timed:
        return []
    out = ["## GPU timing", "", "End to end = pinned host copy in + inference + copy out, synchronized; compute = CUDA events around the inference.", "",
           "| artifact | batch | CUDA graph | end-to-end p50 / p90 / p99 ms | compute p50 / p90 / p99 ms | H2D ms | D2H ms | img/s | compute img/s |",
           "|---|---:|---|---|---|---:|---:|---:|---:|"]
    for name, t in timed:
        e, c = t["end_to_end_ms"], t["gpu_compute_ms"]
        out.append(f"| {name} | {t['batch']} | {'yes' if t['cuda_graph'] else 'no'} | {e['p50']:.3f} / {e['p90']:.3f} / {e['p99']:.3f} | "
                   f"{c['p50']:.3f} / {c['p90']:.3f} / {c['p99']:.3f} | {t['h2d_ms']:.3f} | {t['d2h_ms']:.3f} | {t['throughput_ips']:,.0f} | {t['compute_throughput_ips']:,.0f} |")
    return out + [""]


def _fmt_count(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}K"


def table_rows(report: dict) -> list[list[str]]:
    rows = report["results"]
    base = next((r for r in rows if r["artifact"] == "baseline"), rows[0] if rows else None)
    out = []
    for r in rows:
        delta = (r["top1"] - base["top1"]) * 100
        out.append([
            r["artifact"], r["format"], r["precision"], r["backend"], _fmt_count(r["params"]), _fmt_count(r["macs"]),
            f"{r['size_mb']:.2f}", f"{r['top1'] * 100:.2f}%", f"{delta:+.2f}", f"{r['top5'] * 100:.2f}%",
            f"{r['latency_ms']['p50']:.3f}", f"{r['latency_ms']['p90']:.3f}", f"{r['latency_ms']['p99']:.3f}", f"{r['throughput_ips']:,.0f}",
        ])
    return out


def markdown(report: dict) -> str:
    env = report["env"]
    lines = [f"# edgekit run: {report['model']} on {report['data']['name'] if report['data'] else '?'}", ""]
    lines += [f"Status: **{report['status']}**" + (f": {report['error']}" if report["error"] else ""), ""]
    if report["results"]:
        lines += [f"Latency at batch 1 and throughput at batch 32 on {env['cpu']}, {env['threads']} threads "
                  f"(PyTorch {env['torch']}, ONNX Runtime {env['onnxruntime']}). Δ top-1 in points vs the baseline.", ""]
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
    fmt = lambda r: "  ".join(c.rjust(w) if i >= 4 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([fmt(rows[0]), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows[1:]])


def write(art: Artifact, status: str = "ok", error: str | None = None) -> dict:
    report = build(art, status, error)
    atomic_write_json(art.run_dir / "report.json", report)
    atomic_write_text(art.run_dir / "report.md", markdown(report))
    from edgekit import report_html  # here, not at the top: report_html imports this module's table

    atomic_write_text(art.run_dir / "report.html", report_html.render(report))
    if report["results"]:
        print("\n" + console_table(report), flush=True)
        for n in report["notes"]:
            print(f"note: {n}", flush=True)
        print(f"\nthreads: {report['env']['threads']}  cpu: {report['env']['cpu']}  report: {art.run_dir / 'report.md'}", flush=True)
    return report
