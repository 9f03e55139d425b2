"""`edgekit report RUN_DIR ...`: runs side by side, one table per run, with the cells that differ from the
first run's same artifact marked, as markdown on stdout and optionally as one self-contained HTML page."""

from __future__ import annotations

import json
from pathlib import Path

import edgekit.report_html as rh
from edgekit.errors import EdgekitError
from edgekit.fileio import atomic_write_text
from edgekit.manifest import check_schema_version
from edgekit.report import SCHEMA_VERSION
from edgekit.report_table import COLUMNS, table_rows

POINTS = 0.1  # top-1/top-5 differences below this are evaluation noise on small validation sets
RELATIVE = 0.05  # and relative differences below 5%: run-to-run timing noise on a shared CPU
# column, value, unit of the threshold, whether higher is better
CHECKS = [
    ("top-1", lambda r: r["top1"] * 100, "pt", True),
    ("top-5", lambda r: r["top5"] * 100, "pt", True),
    ("p50 ms", lambda r: r["latency_ms"]["p50"], "%", False),
    ("p90 ms", lambda r: r["latency_ms"]["p90"], "%", False),
    ("p99 ms", lambda r: r["latency_ms"]["p99"], "%", False),
    ("img/s @32", lambda r: r["throughput_ips"], "%", True),
    ("size MB", lambda r: r["size_mb"], "%", False),
    ("params", lambda r: r["params"], "%", False),
    ("MACs", lambda r: r["macs"], "%", False),
]
RULE = (
    f"Marked cells differ from run 1's same artifact: top-1 and top-5 by at least {POINTS:g} points; "
    f"latency, throughput, size, params and MACs by at least {RELATIVE:.0%}. "
    "↑ higher / ↓ lower than run 1, with the difference."
)
STATUS_RULE = (
    "Status: the accuracy gate's verdict where the run had gates; otherwise pass when an artifact's top-1 is "
    "within the run's allowed drop (gate.max_drop, default 1 point) of its baseline, fail otherwise."
)
ROW_KEYS = {
    "artifact",
    "format",
    "precision",
    "backend",
    "params",
    "macs",
    "size_mb",
    "top1",
    "top5",
    "latency_ms",
    "throughput_ips",
}


def load_run(folder: str | Path) -> dict:
    """A run folder's report.json (or the file itself), checked enough that the table can be drawn."""
    path = Path(folder)
    fix = "give a run folder made by `edgekit compress` or `edgekit run` (artifacts/<run>)"
    if not path.exists():
        raise EdgekitError(f"{path} does not exist: {fix}")
    file = path if path.is_file() and path.name == "report.json" else path / "report.json"
    if not path.is_dir() and file is not path:
        raise EdgekitError(f"{path} is not a run folder: {fix}")
    if not file.is_file():
        raise EdgekitError(
            f"{path} has no report.json, so it is not a run folder "
            f"(or its run was interrupted before the report): {fix}"
        )
    try:
        report = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EdgekitError(f"cannot read {file}: {exc.strerror}; check its permissions") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EdgekitError(
            f"{file} is not valid JSON ({exc}): the file is damaged; "
            f"rerun its recipe with `edgekit run {file.parent / 'recipe.yaml'}`"
        ) from None
    if isinstance(report, dict):
        check_schema_version(report, file, SCHEMA_VERSION)  # none (version 0) reads as before
    rows = report.get("results") if isinstance(report, dict) else None
    if not isinstance(rows, list) or not all(isinstance(r, dict) and set(r) >= ROW_KEYS for r in rows):
        raise EdgekitError(f"{file} is not an edgekit report (no 'results' list of artifact rows): {fix}")
    report.setdefault("run_dir", str(file.parent))
    return report


def diff_marks(first: dict, other: dict) -> rh.Marks:
    """(artifact, column) -> ("↑+0.35pt" or "↓-12%", "better" | "worse") for the cells of `other` that differ
    from `first`'s row of the same artifact beyond noise."""
    base = {r["artifact"]: r for r in first["results"]}
    marks: rh.Marks = {}
    for r in other["results"]:
        b = base.get(r["artifact"])
        for col, get, unit, higher_better in CHECKS if b else []:
            new, old = get(r), get(b)
            if unit == "pt":
                delta = new - old
                shown, big = f"{delta:+.2f}pt", round(abs(delta), 6) >= POINTS  # rounded: 0.1 points is not 0.0999999
            else:
                delta = (new - old) / old if old else (0.0 if new == old else float("inf"))
                shown, big = f"{delta:+.0%}", round(abs(delta), 6) >= RELATIVE
            if big:
                marks[(r["artifact"], col)] = (
                    ("↑" if delta > 0 else "↓") + shown,
                    "better" if (delta > 0) == higher_better else "worse",
                )
    return marks


def _heading(i: int, report: dict) -> str:
    limit, _ = rh.max_drop(report)
    return (
        f"Run {i}: {report['run_dir']} ({rh.subject(report)}; status {report.get('status')}; allowed top-1 drop "
        f"{limit:.1f} points)"
    )


def _stage_line(report: dict) -> str:
    return (
        "stages: " + ", ".join(f"{s['name']} {s['seconds']:.1f}s" for s in report.get("stages", []))
        if report.get("stages")
        else ""
    )


def markdown(runs: list[dict]) -> str:
    lines = [f"# edgekit: {len(runs)} run{'s' if len(runs) != 1 else ''} compared", ""]
    lines += [STATUS_RULE]
    lines += [RULE, ""] if len(runs) > 1 else [""]
    first = {r["artifact"] for r in runs[0]["results"]}
    for i, report in enumerate(runs, start=1):
        marks = diff_marks(runs[0], report) if i > 1 else {}
        lines += [f"## {_heading(i, report)}", ""]
        if not report["results"]:
            lines += [f"No results: {report.get('error') or 'the run stopped before validation'}", ""]
            continue
        lines += ["| " + " | ".join(["artifact", "status"] + COLUMNS[1:]) + " |", "|" + "---|" * (len(COLUMNS) + 1)]
        for r, cells, status in zip(report["results"], table_rows(report), rh.statuses(report), strict=True):
            name = r["artifact"]
            shown = [
                f"**{c} {marks[(name, col)][0]}**" if (name, col) in marks else c
                for col, c in zip(COLUMNS[1:], cells[1:], strict=True)
            ]
            new = " (new)" if i > 1 and name not in first else ""
            lines.append("| " + " | ".join([name + new, status] + shown) + " |")
        missing = sorted(first - {r["artifact"] for r in report["results"]}) if i > 1 else []
        lines += [""] + ([f"Not in this run: {', '.join(missing)}", ""] if missing else [])
        lines += [_stage_line(report), ""] if report.get("stages") else []
    return "\n".join(lines).rstrip() + "\n"


def html(runs: list[dict]) -> str:
    first = {r["artifact"] for r in runs[0]["results"]}
    series = [
        {
            "label": f"run {i}: {Path(r['run_dir']).name}".replace("$", r"\$"),
            "color": rh.PALETTE[(i - 1) % len(rh.PALETTE)],
            "rows": r["results"],
        }
        for i, r in enumerate(runs, start=1)
    ]
    body = [
        f"<h1>edgekit: {len(runs)} runs compared</h1>",
        f'<p class="rule">{rh.esc(STATUS_RULE)}'
        + (f" {rh.esc(RULE)} Green: better than run 1, red: worse.</p>" if len(runs) > 1 else "</p>"),
        "<h2>Top-1 against latency</h2>",
        '<p class="rule">One colour per run, one point per artifact; ringed points on the dashed line are each '
        "run's Pareto front.</p>",
        rh.chart(rh.accuracy_latency_svg, series),
    ]
    for i, report in enumerate(runs, start=1):
        body += [
            f'<h2 style="color:{series[i - 1]["color"]}">{rh.esc(_heading(i, report))}</h2>',
            rh.status_line(report),
        ]
        if report["results"]:
            new = {r["artifact"] for r in report["results"]} - first if i > 1 else set()
            body.append(rh.table_html(report, diff_marks(runs[0], report) if i > 1 else None, new))
        missing = sorted(first - {r["artifact"] for r in report["results"]}) if i > 1 else []
        body += [f'<p class="muted">Not in this run: {rh.esc(", ".join(missing))}</p>'] if missing else []
        body += [f'<p class="muted">{rh.esc(_stage_line(report))}</p>'] if report.get("stages") else []
    return rh.page(f"edgekit: {len(runs)} runs compared", body)


def compare(folders: list[str], html_file: str | None = None) -> str:
    """The markdown comparison of the run folders; writes the HTML page too when html_file is given."""
    runs = [load_run(f) for f in folders]
    text = markdown(runs)
    if html_file:
        try:
            atomic_write_text(html_file, html(runs))
        except OSError as exc:
            raise EdgekitError(f"cannot write {html_file}: {exc.strerror}; give a writable path to --html") from None
        text += f"\ncomparison page: {html_file}\n"
    return text
