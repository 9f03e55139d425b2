"""report.html: the run's table with a pass/fail column, top-1 against latency with the Pareto front, and
stage times. A pure function of the report dict (render), also used by `edgekit report` (report_compare).

One self-contained file: inline CSS, charts as inline SVG, no scripts, so it opens from a copied run folder
without network. matplotlib is imported only to draw the charts; when it is missing or fails, the page says
why in place of the chart and keeps the tables, so a run never fails over a picture."""

from __future__ import annotations

import html
import re

from edgekit.gates import DEFAULT_MAX_DROP, within_drop
from edgekit.report_table import COLUMNS, baseline_row, table_rows

PASS, FAIL = "#1a7f37", "#cf222e"
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
# Marks from report_compare: (artifact, column) -> (text appended to the cell, "better" | "worse").
Marks = dict[tuple[str, str], tuple[str, str]]

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;margin:24px auto;\
max-width:1180px;padding:0 16px}
h1{font-size:22px;margin:0 0 6px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0;font-size:13px;font-variant-numeric:tabular-nums}.scroll{overflow-x:auto}
th,td{border:1px solid #d0d7de;padding:3px 6px;text-align:right;white-space:nowrap}td.wrap{white-space:normal}
th{background:#f6f8fa}td.l,th.l{text-align:left}tbody tr:nth-child(even){background:#fafbfc}
td.pass{color:#1a7f37;font-weight:600}td.fail{color:#cf222e;font-weight:600}
td.better{background:#dafbe1}td.worse{background:#ffebe9}td small{display:block;font-size:11px}
.rule,.muted{color:#57606a}.error{color:#cf222e}.chart svg{max-width:100%;height:auto}
.bad{color:#cf222e;font-weight:600}.ok{color:#1a7f37;font-weight:600}
"""


def max_drop(report: dict) -> tuple[float, str | None]:
    """The run's allowed top-1 drop in points and the recipe key it comes from: gate.max_drop, which every
    report records. Reports of older edgekit versions may hold it in gate_config or the quantize stage's
    config instead, or not at all (then the default and None)."""
    for value in (report.get("max_drop"), (report.get("gate_config") or {}).get("max_drop")):
        if isinstance(value, (int, float)):
            return float(value), "gate.max_drop"
    quantize: dict = next((s for s in report.get("stages", []) if s.get("name") == "quantize"), {})
    value = (quantize.get("config") or {}).get("max_drop")
    return (float(value), "quantize.max_drop") if isinstance(value, (int, float)) else (DEFAULT_MAX_DROP, None)


def statuses(report: dict) -> list[str]:
    """ "pass" when an artifact's top-1 is at most max_drop points below the baseline's, else "fail"."""
    rows, (limit, _) = report["results"], max_drop(report)
    gates = report.get("gates") or {}
    base = baseline_row(rows)
    if base is None:  # no rows
        return []
    if gates:  # the run's accuracy gates judged each artifact on the validation split: use their verdicts
        return [
            "pass"
            if gates.get(r["artifact"], {}).get("passed", within_drop(base["top1"], r["top1"], limit))
            else "fail"
            for r in rows
        ]
    return ["pass" if within_drop(base["top1"], r["top1"], limit) else "fail" for r in rows]


def rule_text(report: dict) -> str:
    base = baseline_row(report["results"])
    if not base:
        return ""
    limit, key = max_drop(report)
    where = f"this run's {key}" if key else "the default: the run's report records no gate.max_drop"
    return (
        f"Status: pass when an artifact's top-1 is at most {limit:.1f} points below the baseline's "
        f"({base['artifact']}: {base['top1'] * 100:.2f}%; {where}), fail otherwise."
    )


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices, in input order, of the (latency, accuracy) points no other point beats (edgekit.search's
    front, the one definition: lower latency and higher accuracy are better; equal points both stay)."""
    from edgekit.search.pareto import pareto_front as front

    return sorted(front(points))


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def table_html(report: dict, marks: Marks | None = None, new: frozenset[str] | set[str] = frozenset()) -> str:
    """The report's table (report.table_rows) with a status column after the artifact name; `new` names rows
    that the first run of a comparison lacks."""
    marks = marks or {}
    head = ["artifact", "status"] + COLUMNS[1:]
    out = [
        '<div class="scroll"><table><thead><tr>'
        + "".join(f'<th class="l">{esc(h)}</th>' if i < 5 else f"<th>{esc(h)}</th>" for i, h in enumerate(head))
        + "</tr></thead><tbody>"
    ]
    for r, cells, status in zip(report["results"], table_rows(report), statuses(report), strict=True):
        name = r["artifact"]
        tds = [
            f'<td class="l">{esc(name)}{" <em>(new)</em>" if name in new else ""}</td>',
            f'<td class="l {status}">{"✓" if status == "pass" else "✗"} {status}</td>',
        ]
        for i, (col, text) in enumerate(zip(COLUMNS[1:], cells[1:], strict=True), start=2):
            extra, kind = marks.get((name, col), ("", ""))
            cls = f"{'l' if i < 5 else ''} {kind}".strip()
            tds.append(f'<td class="{cls}">{esc(text)}{f" <small>{esc(extra)}</small>" if extra else ""}</td>')
        out.append("<tr>" + "".join(tds) + "</tr>")
    return "\n".join(out + ["</tbody></table></div>"])


def stages_table(report: dict) -> str:
    out = [
        '<table><thead><tr><th class="l">stage</th><th>seconds</th><th class="l">what it did</th></tr></thead><tbody>'
    ]
    for s in report.get("stages", []):
        detail = ", ".join(f"{k}={v}" for k, v in (s.get("metrics") or {}).items() if not isinstance(v, dict))
        out.append(
            f'<tr><td class="l">{esc(s["name"])}</td><td>{s["seconds"]:.1f}</td>'
            f'<td class="l wrap">{esc(detail)}</td></tr>'
        )
    return "\n".join(out + ["</tbody></table>"])


def _svg(fig) -> str:
    import io

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]  # drop the XML declaration and DOCTYPE: inline SVG in HTML takes neither
    return re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.S)  # RDF boilerplate full of URLs


def _overlap(a: tuple, b: tuple) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _place_labels(ax, labels: list[tuple[str, float, float]], fontsize: float = 8) -> None:
    """Label points without overprinting: each label takes the first nearby spot (right or left of its point,
    a few lines up or down) whose estimated box stays in the axes and overlaps no marker and no earlier label.
    A label moved off its point's line gets a thin leader. Geometry in points, against frozen axis limits."""
    scale = 72 / ax.figure.dpi
    frame = [v * scale for v in ax.get_window_extent().extents]
    at = [tuple(v * scale for v in ax.transData.transform((x, y))) for _, x, y in labels]
    taken = [(px - 4, py - 4, px + 4, py + 4) for px, py in at]  # the markers
    spots = [(side * 7, dy) for dy in (0, 9, -9, 18, -18, 27, -27, 36, -36) for side in (1, -1)]
    h = fontsize + 2
    for (text, x, y), (px, py) in zip(labels, at, strict=True):
        w = 0.6 * fontsize * len(text)  # DejaVu Sans averages about 0.6 em per character

        def box(spot, px=px, py=py, w=w):  # bound now: used only within this iteration
            left = px + spot[0] - (0 if spot[0] > 0 else w)
            return left, py + spot[1] - h / 2, left + w, py + spot[1] + h / 2

        dx, dy = next(
            (
                sp
                for sp in spots
                if frame[0] <= box(sp)[0] and box(sp)[2] <= frame[2] and not any(_overlap(box(sp), t) for t in taken)
            ),
            spots[0],
        )
        taken.append(box((dx, dy)))
        ax.annotate(
            text,
            (x, y),
            xytext=(dx, dy),
            textcoords="offset points",
            ha="left" if dx > 0 else "right",
            va="center",
            fontsize=fontsize,
            color="#1f2328",
            parse_math=False,
            arrowprops={"arrowstyle": "-", "color": "#8c959f", "linewidth": 0.5, "shrinkA": 0, "shrinkB": 3}
            if dy
            else None,
        )


def accuracy_latency_svg(series: list[dict], salt: str = "edgekit-acc") -> str:
    """series: [{"label", "color", "rows", "point_colors" (optional, one per row)}]; one labelled point per row,
    each series' Pareto front ringed and joined by a dashed staircase (the best top-1 reachable at each latency)."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure  # no pyplot: no global figure state, no GUI backend
    from matplotlib.lines import Line2D

    with rc_context({"svg.fonttype": "none", "svg.hashsalt": salt, "font.size": 9}):
        fig = Figure(figsize=(8.5, 4.8))
        ax = fig.add_subplot()
        handles, labels = [], []
        for s in series:
            pts = [(r["latency_ms"]["p50"], r["top1"] * 100) for r in s["rows"]]
            if not pts:
                continue
            colors = s.get("point_colors") or [s["color"]] * len(pts)
            ax.scatter(
                [p[0] for p in pts], [p[1] for p in pts], c=colors, s=38, zorder=3, edgecolors="white", linewidths=0.6
            )
            front = sorted(pareto_front(pts), key=lambda i: pts[i])
            ax.scatter(
                [pts[i][0] for i in front],
                [pts[i][1] for i in front],
                s=130,
                facecolors="none",
                edgecolors=s["color"],
                linewidths=1.4,
                zorder=2,
            )
            ax.step(
                [pts[i][0] for i in front],
                [pts[i][1] for i in front],
                where="post",
                color=s["color"],
                linestyle="--",
                linewidth=1,
                zorder=1,
            )
            labels += [(r["artifact"], x, y) for r, (x, y) in zip(s["rows"], pts, strict=True)]
            if s.get("label"):
                handles.append(Line2D([], [], color=s["color"], marker="o", linestyle="--", label=s["label"]))
        ax.set_xlabel("p50 latency at batch 1 (ms) — lower is better")
        ax.set_ylabel("top-1 (%) — higher is better")
        ax.grid(True, color="#e5e5e5", linewidth=0.6)
        ax.margins(x=0.15, y=0.1)
        ax.autoscale_view()
        ax.set_xlim(max(0.0, ax.get_xlim()[0]), ax.get_xlim()[1])  # freeze the limits the labels are placed against
        ax.set_ylim(*ax.get_ylim())
        # A point that repeats another series' point of the same name (an unchanged artifact) keeps one label.
        seen: list[tuple[str, float, float]] = []
        xs, ys = ax.get_xlim(), ax.get_ylim()
        close = lambda a, b: abs(a[1] - b[1]) < 0.01 * (xs[1] - xs[0]) and abs(a[2] - b[2]) < 0.01 * (ys[1] - ys[0])  # noqa: E731
        for lab in labels:
            if not any(lab[0] == o[0] and close(lab, o) for o in seen):
                seen.append(lab)
        _place_labels(ax, seen)
        if handles:
            ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
        return _svg(fig)


def stages_svg(stages: list[dict]) -> str:
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "edgekit-stages", "font.size": 9}):
        fig = Figure(figsize=(6.5, 0.32 * len(stages) + 0.7))
        ax = fig.add_subplot()
        names, secs = [s["name"] for s in stages][::-1], [s["seconds"] for s in stages][::-1]
        ax.barh(names, secs, color="#54aeff")
        for y, (s, v) in enumerate(zip(stages[::-1], secs, strict=True)):
            skipped = "skipped" in (s.get("metrics") or {})
            ax.annotate(
                "skipped" if skipped else f"{v:.1f} s",
                (v, y),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
        ax.set_xlabel("seconds")
        ax.margins(x=0.15)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        return _svg(fig)


def chart(draw, *args) -> str:
    """A chart's inline SVG, or one line saying why there is none: the page matters more than the picture."""
    try:
        return f'<div class="chart">{draw(*args)}</div>'
    except ImportError as exc:
        reason = f"matplotlib is not installed ({exc.name or exc}); pip install matplotlib"
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
    return f'<p class="muted">chart unavailable ({esc(reason)})</p>'


def page(title: str, body: list[str]) -> str:
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width,initial-scale=1">',
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
            *body,
            "</body></html>",
            "",
        ]
    )


def subject(report: dict) -> str:
    return f"{report.get('model') or '?'} on {(report.get('data') or {}).get('name', '?')}"


def title(report: dict) -> str:
    return f"edgekit run: {subject(report)}"


def status_line(report: dict) -> str:
    ok = report.get("status") == "ok"
    error = f': <span class="error">{esc(report["error"])}</span>' if report.get("error") else ""
    return f'<p>Status: <span class="{"ok" if ok else "bad"}">{esc(report.get("status"))}</span>{error}</p>'


def render(report: dict, sections: list[str] | None = None) -> str:
    """report.json's dict -> the report.html page; `sections`: finished HTML placed after the stages."""
    env, rows = report.get("env") or {}, report["results"]
    body = [
        f"<h1>{esc(title(report))}</h1>",
        status_line(report),
        f'<p class="muted">{esc(report.get("run_dir", ""))}</p>',
    ]
    if rows:
        body += [
            f'<p class="rule">Latency at batch 1 and throughput at batch 32 on {esc(env.get("cpu", "?"))} '
            f"({esc(env.get('cpu_features', '?'))}), {esc(env.get('threads', '?'))} threads. "
            f"Δ top-1 in points vs the baseline. {esc(rule_text(report))}</p>",
            table_html(report),
        ]
        body += (
            ["<ul>" + "".join(f"<li>{esc(n)}</li>" for n in report.get("notes", [])) + "</ul>"]
            if report.get("notes")
            else []
        )
        colors = [PASS if s == "pass" else FAIL for s in statuses(report)]
        body += [
            "<h2>Top-1 against latency</h2>",
            '<p class="rule">One point per artifact (green pass, red fail). Ringed points joined by the dashed line '
            "are the Pareto front: no other artifact is at least as fast and at least as accurate and better at one "
            "of the two.</p>",
            chart(accuracy_latency_svg, [{"label": None, "color": "#1f2328", "rows": rows, "point_colors": colors}]),
        ]
    else:
        body.append(
            '<p class="muted">No results: the run stopped before the validate stage measured the artifacts.</p>'
        )
    stages = report.get("stages", [])
    body += ["<h2>Stages</h2>"] + ([chart(stages_svg, stages)] if stages else []) + [stages_table(report)]
    body += sections or []
    body += [
        "<h2>Environment</h2>",
        "<table><tbody>"
        + "".join(f'<tr><td class="l">{esc(k)}</td><td class="l">{esc(v)}</td></tr>' for k, v in env.items())
        + "</tbody></table>",
    ]
    return page(title(report), body)
