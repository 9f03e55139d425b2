"""Per-layer profile of an ONNX model: measured time per graph node on the backend beside what the node
costs (MACs, parameters, bytes moved, MACs per byte), so a user sees which layers are slow for their size:
depthwise convolutions, channel shuffles, element-wise ops and narrow layers move bytes rather than compute.

Time on ONNX Runtime's CPU provider comes from its own profiler (SessionOptions.enable_profiling: a JSON
trace with one "Node" event per kernel run): after a warm-up, each kernel's median over the timed runs.
Kernels are placed on graph nodes by `profile_match` (ORT fuses and renames); time it cannot place is kept
as its own rows and summed in `unmatched_ms`, never spread over the layers. ORT's trace counts whole
microseconds, so kernels of a few microseconds are coarse: more runs sharpen the medians' sum, not each
one. `measured_ms` is the wall time per run with the profiler on (its overhead included). On TensorRT, `profile_engine`
takes layer times from TensorRT's IProfiler (unverified against a real TensorRT: written to the documented
TensorRT 10 API and tested with a fake)."""

from __future__ import annotations

import bisect
import json
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.backends.onnx_costs import QDQ, Graph, load_graph
from edgekit.backends.profile_match import Attribution, Kernel, attribute_ort, attribute_trt
from edgekit.errors import EdgekitError

DEFAULT_RUNS, DEFAULT_WARMUP = 50, 10
ORT_TYPES = {  # ORT's input type -> numpy's
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(uint8)": "uint8",
    "tensor(int8)": "int8",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
}
SLOW_RATIO, SLOW_MIN_SHARE = 2.0, 0.02  # flagged: time share > 2x the MAC share and > 2% of the time


def profile_onnx(
    path: str | Path, threads: int = 1, runs: int = DEFAULT_RUNS, batch: int = 1, warmup: int = DEFAULT_WARMUP
) -> dict[str, Any]:
    """Profile `path` on ONNX Runtime's CPU provider: `warmup` untimed runs, then `runs` timed ones on
    random input of batch `batch`, with `threads` intra-op threads (0 = all usable cores). Returns the
    result dict (see `result_dict`), rows sorted by time."""
    path = Path(path)
    if not path.is_file():
        raise EdgekitError(f"ONNX file {path} does not exist: check the path")
    if runs < 1 or warmup < 0 or batch < 1:
        raise EdgekitError(f"runs ({runs}) and batch ({batch}) must be at least 1, warmup ({warmup}) at least 0")
    graph = load_graph(path, batch)
    kernels, wall_ms = ort_kernel_times(path, threads, runs, warmup, batch)
    meta = {"file": str(path), "backend": "onnxruntime", "threads": threads, "runs": runs, "batch": batch}
    return result_dict(meta, graph, attribute_ort(kernels, graph), wall_ms)


def _profiling_session(path: Path, threads: int, prefix: Path):
    """backends/ort.load_session's session (same provider choice and thread settings), profiler on."""
    from edgekit.backends.ort import load_session

    return load_session(path, threads, profile_prefix=prefix)


def _inputs(session, batch: int) -> dict[str, np.ndarray]:
    """Random inputs at the session's shapes with the batch dimension set; an error for other symbolic dims."""
    rng = np.random.default_rng(0)
    feeds = {}
    for inp in session.get_inputs():
        shape = [batch if i == 0 and not isinstance(d, int) else d for i, d in enumerate(inp.shape)]
        if not all(isinstance(d, int) for d in shape):
            raise EdgekitError(
                f"input {inp.name} has symbolic dimensions {inp.shape} besides the batch: profile a model exported "
                "at a fixed image size"
            )
        dtype = np.dtype(ORT_TYPES.get(inp.type, "float32"))
        feeds[inp.name] = rng.standard_normal(shape).astype(dtype) if dtype.kind == "f" else np.zeros(shape, dtype)
    return feeds


def ort_kernel_times(path: Path, threads: int, runs: int, warmup: int, batch: int) -> tuple[list[Kernel], list[float]]:
    """(each kernel's median time over the timed runs, in first-run order; wall time of each timed run in
    ms). Wall times include the profiler's own overhead."""
    with tempfile.TemporaryDirectory(prefix="edgekit-profile.") as tmp:
        session = _profiling_session(path, threads, Path(tmp) / "ort")
        feeds = _inputs(session, batch)
        wall_ms = []
        for i in range(warmup + runs):
            start = time.perf_counter()
            session.run(None, feeds)
            if i >= warmup:
                wall_ms.append((time.perf_counter() - start) * 1e3)
        events = json.loads(Path(session.end_profiling()).read_text())
    return kernel_medians(events, warmup), wall_ms


def kernel_medians(events: list[dict], warmup: int) -> list[Kernel]:
    """Median per kernel over the runs after the first `warmup` ones, from ORT's trace events: a Node
    event '<kernel>_kernel_time' belongs to the model_run event whose span holds its start. A kernel that
    runs twice in one run (a loop) counts its sum for that run; a run that skipped it counts 0."""
    spans = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")[warmup:]
    starts = [lo for lo, _ in spans]
    per_run: list[dict[str, float]] = [{} for _ in spans]
    ops: dict[str, str] = {}  # kernel -> op, in first-seen order
    for e in sorted((e for e in events if e.get("cat") == "Node"), key=lambda e: e["ts"]):
        if not e["name"].endswith("_kernel_time"):
            continue  # fence events of older releases
        run = bisect.bisect_right(starts, e["ts"]) - 1
        if run < 0 or e["ts"] > spans[run][1]:
            continue  # a warm-up run's kernel
        name = e["name"].removesuffix("_kernel_time")
        ops.setdefault(name, e.get("args", {}).get("op_name", "?"))
        per_run[run][name] = per_run[run].get(name, 0.0) + e["dur"] / 1e3  # microseconds -> ms
    return [Kernel(name, op, float(np.median([r.get(name, 0.0) for r in per_run]))) for name, op in ops.items()]


def result_dict(meta: dict[str, Any], graph: Graph, where: Attribution, wall_ms: list[float]) -> dict[str, Any]:
    """{file, backend, threads, runs, batch, total_ms (sum of kernel medians), measured_ms (median wall time
    per run), unmatched_ms, rows}; a row per graph node and per unplaced kernel: node, op_type, time_ms,
    time_share, macs, mac_share, params, bytes, intensity (MACs per byte, None without bytes), note."""
    total_ms = sum(where.ms.values()) + sum(k.ms for k, _ in where.unmatched)
    total_macs = sum(c.macs for c in graph.costs)
    rows = [_node_row(i, graph, where, total_ms, total_macs) for i in range(len(graph.costs))]
    rows += [_unmatched_row(k, why, total_ms) for k, why in where.unmatched]
    rows.sort(key=lambda r: (-r["time_ms"], -r["macs"]))
    return {
        **meta,
        "total_ms": round(total_ms, 4),
        "measured_ms": round(float(np.median(wall_ms)), 4) if wall_ms else None,
        "unmatched_ms": round(sum(k.ms for k, _ in where.unmatched), 4),
        "rows": rows,
    }


def _share(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def _node_row(i: int, graph: Graph, where: Attribution, total_ms: float, total_macs: int) -> dict[str, Any]:
    cost = graph.costs[i]
    ms = where.ms.get(i, 0.0)
    return {
        "node": cost.name,
        "op_type": cost.op_type,
        "time_ms": round(ms, 4),
        "time_share": _share(ms, total_ms),
        "macs": cost.macs,
        "mac_share": _share(cost.macs, total_macs),
        "params": cost.params,
        "bytes": cost.bytes,
        "intensity": round(cost.macs / cost.bytes, 3) if cost.bytes else None,
        "note": _note(i, graph, where),
        "matched": True,
    }


def _note(i: int, graph: Graph, where: Attribution) -> str:
    cost = graph.costs[i]
    parts = []
    if i in where.fused:
        parts.append(f"fused into {graph.costs[where.fused[i]].name}")
    elif i in where.ran_as:
        ops = sorted({k.op for k in where.ran_as[i]})
        if ops != [cost.op_type]:
            parts.append(f"ran as {'+'.join(ops)}")
        absorbed = [graph.costs[n] for n, into in where.fused.items() if into == i]
        named = [c.name for c in absorbed if c.op_type not in QDQ]
        qdq = len(absorbed) - len(named)
        if named:
            parts.append(f"with {', '.join(named[:2])}{f' +{len(named) - 2}' if len(named) > 2 else ''}")
        if qdq:
            parts.append(f"with {qdq} Q/DQ")
    else:
        parts.append("no kernel of its own (fused, folded, moved or removed by the runtime)")
    if not cost.shapes_known:
        parts.append("shape not inferred: bytes are a floor")
    return "; ".join(parts)


def _unmatched_row(kernel: Kernel, why: str, total_ms: float) -> dict[str, Any]:
    return {
        "node": kernel.name,
        "op_type": kernel.op,
        "time_ms": round(kernel.ms, 4),
        "time_share": _share(kernel.ms, total_ms),
        "macs": 0,
        "mac_share": 0.0,
        "params": 0,
        "bytes": 0,
        "intensity": None,
        "note": f"unmatched: {why}",
        "matched": False,  # a kernel with no graph node: never flagged, its MACs are unknown rather than 0
    }


def flag(row: dict[str, Any]) -> str:
    """'slow for its MACs' when the row's time share is over SLOW_RATIO times its MAC share and over
    SLOW_MIN_SHARE of the time; '' otherwise."""
    slow = (
        row.get("matched", True)
        and row["time_share"] > SLOW_RATIO * row["mac_share"]
        and row["time_share"] > SLOW_MIN_SHARE
    )
    return "slow for its MACs" if slow else ""


def si(value: float) -> str:
    """1234567 -> '1.23M'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{unit}"
    return f"{value:.0f}"


def _fit(text: str, width: int) -> str:
    """Keep a node name's end, where its layer is: '…/blocks.3/conv_dw/Conv'."""
    return text if len(text) <= width else "…" + text[-(width - 1) :]


COLUMNS = ("node", "op", "time ms", "time %", "MACs", "MAC %", "params", "bytes", "MAC/B", "note")


def format_profile(result: dict[str, Any], top: int = 20) -> str:
    """The profile as a terminal table of its `top` slowest rows (0 = all), flags and totals."""
    rows = result["rows"] if top <= 0 else result["rows"][:top]
    threads = result.get("threads")
    head = (
        f"{Path(result['file']).name} on {result['backend']}"
        + (f", {threads or 'all'} thread{'s' if threads != 1 else ''}" if threads is not None else "")
        + f", median of {result['runs']} runs: {result['total_ms']:.3f} ms in kernels (sum of per-node medians)"
        + (f", {result['measured_ms']:.3f} ms per run measured" if result.get("measured_ms") is not None else "")
    )
    table = [COLUMNS] + [_cells(r) for r in rows]
    widths = [max(len(line[c]) for line in table) for c in range(len(COLUMNS) - 1)]
    lines = [head, ""]
    for line in table:
        cells = [
            cell.ljust(w) if c < 2 else cell.rjust(w) for c, (cell, w) in enumerate(zip(line[:-1], widths, strict=True))
        ]
        lines.append("  ".join(cells + [line[-1]]).rstrip())
    lines += _footer(result, len(rows))
    return "\n".join(lines)


def _cells(row: dict[str, Any]) -> tuple[str, ...]:
    note = "; ".join(x for x in (flag(row).upper(), row["note"]) if x)
    return (
        _fit(row["node"], 40),
        row["op_type"],
        f"{row['time_ms']:.4f}",
        f"{row['time_share'] * 100:.1f}",
        si(row["macs"]),
        f"{row['mac_share'] * 100:.1f}",
        si(row["params"]),
        si(row["bytes"]),
        f"{row['intensity']:.2f}" if row["intensity"] is not None else "-",
        note,
    )


def _footer(result: dict[str, Any], shown: int) -> list[str]:
    rows = result["rows"]
    lines = [""]
    rest = rows[shown:]
    if rest:
        share = sum(r["time_share"] for r in rest)
        lines.append(f"{len(rest)} more rows: {share * 100:.1f}% of the time (--top 0 lists all)")
    mismatched = sorted((r for r in rows if flag(r)), key=lambda r: r["mac_share"] - r["time_share"])[:3]
    if mismatched:
        worst = ", ".join(f"{r['node']} ({r['time_share'] * 100:.0f}% time, {r['mac_share'] * 100:.0f}% MACs)"
                          for r in mismatched)  # fmt: skip
        lines.append(f"slow for their MACs: {worst}. They move bytes rather than compute: see MAC/B.")
    if result["unmatched_ms"] > 0:
        share = _share(result["unmatched_ms"], result["total_ms"])
        lines.append(
            f"unmatched: {result['unmatched_ms']:.4f} ms ({share * 100:.1f}%) of kernel time ran in kernels with no "
            f"graph node ({_by_op(r for r in rows if not r.get('matched', True))}): listed as their own rows, not "
            "spread over the layers."
        )
    lines.append(
        f"flag: time share > {SLOW_RATIO:g}x MAC share and > {SLOW_MIN_SHARE * 100:g}% of the time. bytes: "
        "inputs + weights + outputs at their element types. MAC/B: MACs per byte moved."
    )
    return lines


def _by_op(rows: Iterable[dict[str, Any]]) -> str:
    """'ReorderOutput 20x 0.070 ms, Mul 1x 0.004 ms', biggest first."""
    groups: dict[str, list[float]] = {}
    for r in rows:
        groups.setdefault(r["op_type"], []).append(r["time_ms"])
    ranked = sorted(groups.items(), key=lambda kv: -sum(kv[1]))
    return ", ".join(f"{op} {len(ms)}x {sum(ms):.3f} ms" for op, ms in ranked)


def profile_engine(
    engine: str | Path,
    onnx_path: str | Path,
    runs: int = DEFAULT_RUNS,
    warmup: int = DEFAULT_WARMUP,
    batch: int = 1,
    trt: Any = None,
) -> dict[str, Any]:
    """Profile a stamped TensorRT engine layer by layer with TensorRT's IProfiler, costs from the ONNX
    file it was built from. UNVERIFIED: written against TensorRT 10's documented Python API and tested
    only with a fake module (tests/test_profile.py); no real TensorRT has run it."""
    from edgekit.backends.tensorrt.layer_profile import time_layers
    from edgekit.backends.tensorrt.runner import TrtRunner

    runner = TrtRunner(Path(engine), Path(onnx_path), trt=trt)
    layer_ms, wall_ms = time_layers(runner, runs, warmup, batch)
    return engine_result(engine, onnx_path, layer_ms, wall_ms, runs, batch)


def engine_result(
    engine: str | Path,
    onnx_path: str | Path,
    layer_ms: dict[str, list[float]],
    wall_ms: list[float],
    runs: int,
    batch: int = 1,
) -> dict[str, Any]:
    """The result dict from TensorRT's per-run layer times (layer -> ms per timed run)."""
    graph = load_graph(onnx_path, batch)
    kernels = [Kernel(name, "TensorRT layer", float(np.median(ms))) for name, ms in layer_ms.items()]
    meta = {"file": str(engine), "backend": "tensorrt", "threads": None, "runs": runs, "batch": batch}
    return result_dict(meta, graph, attribute_trt(kernels, graph), wall_ms)
