"""report.html's sections drawn from single stages: the search (its Pareto front chart, inlined from the
run folder, and the front as a table) and the validate stage's per-layer profiles. They sit below the
stage table; report_html.render takes them as finished HTML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.report_html import esc
from edgekit.report_profile import profile_section_html


def _stage(report: dict, name: str) -> dict[str, Any] | None:
    found = next((s for s in report.get("stages", []) if s.get("name") == name), None)
    metrics = (found or {}).get("metrics") or {}
    return None if "skipped" in metrics or "failed" in metrics else metrics


def _or_dash(value: Any) -> Any:
    return "-" if value is None else value


def _keep(keep: list[float]) -> str:
    return f"{min(keep):.2f} / {sum(keep) / len(keep):.2f} / {max(keep):.2f}" if keep else "-"


def search_section(metrics: dict[str, Any], run_dir: Path) -> str:
    chosen, cost = metrics.get("chosen") or {}, metrics.get("search_cost") or {}
    target = ", ".join(f"{k.removeprefix('target_')} <= {v}" for k, v in (metrics.get("target") or {}).items())
    lat = f", {chosen['final_latency_ms']} ms re-timed" if chosen.get("final_latency_ms") is not None else ""
    if chosen.get("grown_from") is not None:
        lat += f"; grown from candidate {chosen['grown_from']} to use the target's slack"
    recipe = (metrics.get("files") or {}).get("recipe", "search/search_recipe.yaml")
    lines = [
        "<h2>Search</h2>",
        f'<p class="rule">{esc(metrics.get("algorithm"))}: {esc(metrics.get("evaluations"))} candidates evaluated in '
        f"{esc(cost.get('seconds'))} s ({esc(metrics.get('stopped_by'))}), target {esc(target)}. Chosen: candidate "
        f"{esc(chosen.get('index'))}, proxy top-1 {esc(chosen.get('proxy_top1'))}, validation top-1 "
        f"{esc(chosen.get('val_top1'))}, MACs {esc(chosen.get('macs_fraction'))} of the baseline{esc(lat)}. "
        f"<code>edgekit run {esc(run_dir / recipe)}</code> reproduces it without searching.</p>",
    ]
    chart = run_dir / (metrics.get("files") or {}).get("chart", "")
    if chart.is_file() and chart.suffix == ".svg":
        lines.append(f'<div class="chart">{chart.read_text()}</div>')
    front = (metrics.get("front") or {}).get("points") or []
    if front:
        head = ["candidate", "keep min / mean / max", "MACs fraction", "latency ms", "proxy top-1"]
        lines.append(
            '<div class="scroll"><table><thead><tr>'
            + "".join(f"<th>{esc(h)}</th>" for h in head)
            + "</tr></thead><tbody>"
            + "".join(
                f"<tr><td>{esc(p.get('index'))}</td><td>{esc(_keep(p.get('keep') or []))}</td>"
                f"<td>{esc(p.get('macs_fraction'))}</td><td>{esc(_or_dash(p.get('latency_ms')))}</td>"
                f"<td>{esc(p.get('proxy_top1'))}</td></tr>"
                for p in front
            )
            + "</tbody></table></div>"
        )
    return "\n".join(lines)


def stage_sections(report: dict, run_dir: Path) -> list[str]:
    out = []
    searched = _stage(report, "search")
    if searched:
        out.append(search_section(searched, run_dir))
    validated = _stage(report, "validate")
    for profile in ((validated or {}).get("profiles") or {}).values():
        out.append(profile_section_html(profile))
    return out
