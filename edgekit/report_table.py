"""The results table shared by report.md, the console, report.html and `edgekit report`: one row per
model the run measured, formatted once."""

from __future__ import annotations

COLUMNS = [
    "artifact",
    "format",
    "precision",
    "backend",
    "params",
    "MACs",
    "size MB",
    "top-1",
    "Δ top-1",
    "top-5",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "img/s @32",
    "GMAC/s",
    "% of peak",
    "int8 kernels",
]


def baseline_row(rows: list[dict]) -> dict | None:
    """The row every Δ is measured against: the baseline in PyTorch, else the first row."""
    return next((r for r in rows if r["artifact"] == "baseline"), rows[0] if rows else None)


def _fmt_count(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}K"


def _kernels(r: dict) -> str:
    """Integer convolution/matrix kernels of all such kernels the runtime runs ("45/49"), "-" for rows
    without a graph to inspect (PyTorch, GPU providers)."""
    k = r.get("kernels")
    return f"{k['int8']}/{k['int8'] + k['float']}" if k else "-"


def table_rows(report: dict) -> list[list[str]]:
    rows = report["results"]
    base = baseline_row(rows)
    if base is None:  # no rows
        return []
    out = []
    for r in rows:
        delta = (r["top1"] - base["top1"]) * 100
        out.append(
            [
                r["artifact"],
                r["format"],
                r["precision"],
                r["backend"],
                _fmt_count(r["params"]),
                _fmt_count(r["macs"]),
                f"{r['size_mb']:.2f}",
                f"{r['top1'] * 100:.2f}%",
                f"{delta:+.2f}",
                f"{r['top5'] * 100:.2f}%",
                f"{r['latency_ms']['p50']:.3f}",
                f"{r['latency_ms']['p90']:.3f}",
                f"{r['latency_ms']['p99']:.3f}",
                f"{r['throughput_ips']:,.0f}",
                f"{r['gmacs']:.1f}" if "gmacs" in r else "-",
                f"{100 * r['peak_share']:.0f}%" if "peak_share" in r else "-",
                _kernels(r),
            ]
        )
    return out
