"""A per-layer profile (backends.profile's result dict) as a report.html section: the slowest rows in a table
with a time-share bar beside a MAC-share bar per row, so a layer slow for its size stands out. Plain HTML
with inline styles (the page's own CSS styles the table), no scripts: it works pasted into report.html or
any other page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.backends.profile import SLOW_MIN_SHARE, SLOW_RATIO, flag, si
from edgekit.report_html import esc

TIME_COLOR, MAC_COLOR = "#1f77b4", "#ff7f0e"
HEAD = ["node", "op", "time ms", "time %", "MACs", "MAC %", "params", "bytes", "MAC/B", "time vs MACs", "note"]


def _bar(share: float, color: str, label: str) -> str:
    width = max(0.0, min(share, 1.0)) * 100
    return (
        f'<div title="{esc(label)} {share * 100:.1f}%" style="height:6px;margin:1px 0;background:#eaeef2;width:160px">'
        f'<div style="height:6px;width:{width:.1f}%;background:{color}"></div></div>'
    )


def _row(r: dict[str, Any]) -> str:
    slow = flag(r)
    note = "; ".join(x for x in (slow, r["note"]) if x)
    cells = [
        f'<td class="l">{esc(r["node"])}</td>',
        f'<td class="l">{esc(r["op_type"])}</td>',
        f"<td>{r['time_ms']:.4f}</td>",
        f"<td>{r['time_share'] * 100:.1f}</td>",
        f"<td>{si(r['macs'])}</td>",
        f"<td>{r['mac_share'] * 100:.1f}</td>",
        f"<td>{si(r['params'])}</td>",
        f"<td>{si(r['bytes'])}</td>",
        f"<td>{r['intensity']:.2f}</td>" if r.get("intensity") is not None else "<td>-</td>",
        f'<td class="l">{_bar(r["time_share"], TIME_COLOR, "time")}{_bar(r["mac_share"], MAC_COLOR, "MACs")}</td>',
        f'<td class="l wrap{" bad" if slow else ""}">{esc(note)}</td>',
    ]
    return "<tr>" + "".join(cells) + "</tr>"


def profile_section_html(profile: dict[str, Any], top: int = 30) -> str:
    """The profile's `top` slowest rows (0 = all) as an <h2> section with a table and share bars."""
    rows = profile["rows"] if top <= 0 else profile["rows"][:top]
    threads = profile.get("threads")
    where = f"{esc(profile['backend'])}" + (f", {esc(threads or 'all')} thread(s)" if threads is not None else "")
    measured = profile.get("measured_ms")
    lines = [
        f"<h2>Per-layer profile: {esc(Path(profile['file']).name)}</h2>",
        f'<p class="rule">{esc(Path(profile["file"]).name)} on {where}, median of {esc(profile["runs"])} runs: '
        f"{profile['total_ms']:.3f} ms in kernels"
        + (f", {measured:.3f} ms per run measured" if measured is not None else "")
        + f'. Bars: <span style="color:{TIME_COLOR}">time share</span> above '
        f'<span style="color:{MAC_COLOR}">MAC share</span>; flagged when the time share is over '
        f"{SLOW_RATIO:g}x the MAC share and over {SLOW_MIN_SHARE * 100:g}% of the time.</p>",
        '<div class="scroll"><table><thead><tr>'
        + "".join(f'<th class="l">{esc(h)}</th>' if h in ("node", "op", "note") else f"<th>{esc(h)}</th>" for h in HEAD)
        + "</tr></thead><tbody>",
        *(_row(r) for r in rows),
        "</tbody></table></div>",
    ]
    rest = profile["rows"][len(rows) :]
    if rest:
        share = sum(r["time_share"] for r in rest)
        lines.append(f'<p class="muted">{len(rest)} more rows: {share * 100:.1f}% of the time.</p>')
    if profile.get("unmatched_ms"):
        lines.append(
            f'<p class="muted">{profile["unmatched_ms"]:.4f} ms of kernel time ran in kernels with no graph node '
            "(inserted by the runtime): their own rows, not spread over the layers.</p>"
        )
    return "\n".join(lines)
