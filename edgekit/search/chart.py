"""The search's chart: every evaluated candidate (proxy top-1 against latency or MACs), the Pareto
front as a staircase, the uniform-ratio candidates as the baseline to beat, the chosen candidate and
the target line. A self-contained SVG from matplotlib's object API (imported here only: no pyplot, no
global figure state), as edgekit's report charts are made."""

from __future__ import annotations

import io
import re

AXIS_LABELS = {
    "latency_ms": "p50 latency, ONNX Runtime CPU, batch 1, 1 thread (ms)",
    "macs_fraction": "MACs (fraction of the unpruned model)",
}


def front_svg(
    points: list[tuple[float, float]],
    front: list[int],
    axis: str,
    target: float | None = None,
    uniform: list[tuple[float, float]] | None = None,
    chosen: tuple[float, float] | None = None,
    title: str = "",
) -> str:
    """`points`: (cost, proxy top-1) of every evaluated candidate; `front`: indices into them;
    `uniform`: (cost, top-1) of uniform-ratio candidates, joined in the order given (by keep ratio:
    measured latency is noisy, sorting by it zigzags). Returns the SVG text."""
    text = _render("svg", points, front, axis, target, uniform, chosen, title).decode()
    text = text[text.index("<svg") :]  # a standalone file or inline in HTML: no XML declaration or DOCTYPE
    return re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.S)


def front_png(
    points: list[tuple[float, float]],
    front: list[int],
    axis: str,
    target: float | None = None,
    uniform: list[tuple[float, float]] | None = None,
    chosen: tuple[float, float] | None = None,
    title: str = "",
    dpi: int = 110,
) -> bytes:
    """front_svg's chart as PNG bytes."""
    return _render("png", points, front, axis, target, uniform, chosen, title, dpi)


def _render(
    fmt: str,
    points: list[tuple[float, float]],
    front: list[int],
    axis: str,
    target: float | None = None,
    uniform: list[tuple[float, float]] | None = None,
    chosen: tuple[float, float] | None = None,
    title: str = "",
    dpi: int = 100,
) -> bytes:
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "edgekit-search", "font.size": 9}):
        fig = Figure(figsize=(7.5, 4.5), dpi=dpi)
        ax = fig.add_subplot()
        ax.scatter([p[0] for p in points], [p[1] * 100 for p in points], s=16, c="#8c959f", label="evaluated", zorder=2)
        steps = [points[i] for i in front]
        ax.step(
            [p[0] for p in steps],
            [p[1] * 100 for p in steps],
            where="post",
            color="#0969da",
            linewidth=1.2,
            marker="o",
            markersize=4,
            label="Pareto front",
            zorder=3,
        )
        if uniform:
            ax.plot(
                [p[0] for p in uniform],
                [p[1] * 100 for p in uniform],
                color="#bf8700",
                linestyle=":",
                marker="s",
                markersize=4,
                label="uniform ratio",
                zorder=3,
            )
        if chosen is not None:
            ax.scatter([chosen[0]], [chosen[1] * 100], s=140, marker="*", c="#cf222e", label="chosen", zorder=4)
        if target is not None:
            ax.axvline(target, color="#cf222e", linestyle="--", linewidth=1, label="target")
        ax.set_xlabel(AXIS_LABELS.get(axis, axis))
        ax.set_ylabel("proxy top-1 (%), held-out training images")
        if title:
            ax.set_title(title)
        ax.grid(True, color="#e5e5e5", linewidth=0.6)
        ax.legend(loc="lower right", frameon=False)
        buf = io.BytesIO()
        meta = {"Date": None} if fmt == "svg" else {"Software": None}  # reproducible bytes
        fig.savefig(buf, format=fmt, bbox_inches="tight", metadata=meta)
    return buf.getvalue()
