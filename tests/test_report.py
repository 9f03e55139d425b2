"""The report's notes say what pruning bought and flag int8 that did not pay off."""

from edgekit.report import markdown, notes

ROLE = {"baseline.onnx": "baseline_onnx", "model.onnx": "onnx", "model.int8.onnx": "int8_onnx"}


def row(name, precision, macs, params, p50, ips, size, backend="onnxruntime"):
    return {
        "artifact": name if backend == "onnxruntime" else f"{name} ({backend})",
        "role": ROLE[name],
        "format": "onnx",
        "precision": precision,
        "backend": backend,
        "macs": macs,
        "params": params,
        "latency_ms": {"p50": p50, "p90": p50, "p99": p50},
        "throughput_ips": ips,
        "size_mb": size,
        "top1": 0.9,
        "top5": 1.0,
    }


def test_notes_flag_int8_slower_than_its_fp32_source():
    rows = [
        row("baseline.onnx", "fp32", 100, 10, 0.40, 4000, 6.0),
        row("model.onnx", "fp32", 50, 5, 0.20, 8000, 3.0),
        row("model.int8.onnx", "int8", 50, 5, 0.25, 7000, 1.0),
    ]
    out = notes(rows)
    assert "kept 50% of the MACs" in out[0] and "2.00x" in out[0]
    assert "model.int8.onnx is not faster than its fp32 source model.onnx" in out[1]
    assert "batch 1 (0.250 vs 0.200 ms)" in out[1] and "batch 32 (7,000 vs 8,000 img/s)" in out[1]


def test_int8_is_compared_with_its_fp32_peer_on_the_same_backend():
    """Rows are matched by role (int8_onnx's peer is onnx) and backend, not by cutting file names."""
    rows = [
        row("model.onnx", "fp32", 50, 5, 0.20, 8000, 3.0),
        row("model.int8.onnx", "int8", 50, 5, 0.10, 9000, 1.0),
        row("model.onnx", "fp32", 50, 5, 0.05, 30000, 3.0, "onnxruntime-cuda"),
        row("model.int8.onnx", "int8", 50, 5, 0.08, 20000, 1.0, "onnxruntime-cuda"),
    ]
    (note,) = notes(rows)
    assert note.startswith(
        "model.int8.onnx (onnxruntime-cuda) is not faster than its fp32 source model.onnx (onnxruntime-cuda)"
    )


def test_no_int8_note_when_int8_wins():
    rows = [
        row("baseline.onnx", "fp32", 100, 10, 0.40, 4000, 6.0),
        row("model.onnx", "fp32", 50, 5, 0.20, 8000, 3.0),
        row("model.int8.onnx", "int8", 50, 5, 0.10, 9000, 1.0),
    ]
    assert len(notes(rows)) == 1


def test_markdown_lists_notes():
    report = {
        "model": "m",
        "data": {"name": "d"},
        "status": "ok",
        "error": None,
        "stages": [],
        "results": [],
        "env": {"cpu": "x", "threads": 1},
        "notes": ["something worth saying"],
    }
    assert "- something worth saying" in markdown(report)


def test_ship_file_is_the_result_row_file_of_the_shipped_artifact(tmp_path):
    from edgekit.report import ship_file

    rows = [{"artifact": name, "file": name} for name in ("model.onnx", "model.int8.onnx")]
    shipped = ship_file({"ship": {"artifact": "model.int8.onnx"}, "results": rows}, tmp_path)
    assert shipped == tmp_path / "model.int8.onnx"
    assert ship_file({"ship": None, "results": rows}, tmp_path) is None  # nothing passed its gate
    assert ship_file({"ship": {"artifact": "distilled"}, "results": rows}, tmp_path) is None  # no row names it
    assert ship_file({}, tmp_path) is None  # a report.json another machine could not read
