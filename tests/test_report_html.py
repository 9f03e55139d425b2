"""report.html (table with pass/fail, top-1 vs latency with the Pareto front, stage times), `edgekit report`
comparing run folders, and the page as headless Chromium renders it."""

import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from edgekit import report_html
from edgekit.cli import main
from edgekit.report_compare import diff_marks
from edgekit.report_html import pareto_front, render, statuses

CHROMIUM = "/usr/bin/chromium"


def row(name, top1, p50, precision="fp32", fmt="onnx"):
    return {
        "artifact": name,
        "format": fmt,
        "precision": precision,
        "backend": "onnxruntime" if fmt == "onnx" else "torch",
        "params": 61_000,
        "macs": 420_000,
        "size_mb": 0.25 if precision == "int8" else 1.0,
        "top1": top1,
        "top5": 0.99,
        "latency_ms": {"p50": p50, "p90": p50 * 1.1, "p99": p50 * 1.3},
        "throughput_ips": 1000 / p50,
    }


def make_report(rows=None, max_drop=1.0, run_dir="/runs/a"):
    rows = (
        rows
        if rows is not None
        else [
            row("baseline", 0.900, 0.50, fmt="torch"),
            row("baseline.onnx", 0.900, 0.30),
            row("model.onnx", 0.895, 0.20),
            row("model.int8.onnx", 0.880, 0.15, "int8"),
        ]
    )
    stages = [
        {"name": "load", "seconds": 0.2, "config": {}, "metrics": {"images": 1500}},
        {"name": "train", "seconds": 12.5, "config": {"epochs": 1}, "metrics": {"top1": 0.9}},
        {"name": "quantize", "seconds": 3.1, "config": {}, "metrics": {"calibration": "minmax"}},
        {"name": "validate", "seconds": 4.0, "config": {}, "metrics": {}},
    ]
    return {
        "status": "ok",
        "error": None,
        "run_dir": run_dir,
        "model": "lenet",
        "data": {"name": "fashion_mnist"},
        "stages": stages,
        "max_drop": max_drop,
        "results": rows,
        "env": {"cpu": "test cpu", "threads": 1, "torch": "2.13"},
        "notes": ["pruning kept 50% of the MACs"],
    }


def write_run(folder: Path, report: dict) -> Path:
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps(report))
    return folder


class Table(HTMLParser):
    """The cell texts of every <tbody> row, per table."""

    def __init__(self):
        super().__init__()
        self.tables, self.in_body, self.cell = [], False, None

    def handle_starttag(self, tag, attrs):
        if tag == "tbody":
            self.tables.append([])
            self.in_body = True
        elif tag == "tr" and self.in_body:
            self.tables[-1].append([])
        elif tag == "td" and self.in_body:
            self.cell = ""

    def handle_endtag(self, tag):
        if tag == "tbody":
            self.in_body = False
        elif tag == "td" and self.cell is not None:
            self.tables[-1][-1].append(self.cell.strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def rows_of(page: str) -> list[list[str]]:
    parser = Table()
    parser.feed(page)
    return parser.tables[0]


def test_pareto_front_on_hand_made_points():
    # (latency ms, top-1 %): lower latency and higher accuracy are better
    pts = [(1.0, 90.0), (2.0, 92.0), (2.5, 91.0), (0.5, 80.0), (3.0, 92.0), (0.5, 79.0), (4.0, 95.0)]
    assert pareto_front(pts) == [0, 1, 3, 6]  # (2.5, 91) loses to (2, 92); (3, 92) too; (0.5, 79) to (0.5, 80)
    assert pareto_front([(1.0, 90.0), (1.0, 90.0)]) == [0, 1]  # equal points beat neither
    assert pareto_front([(1.0, 90.0)]) == [0] and pareto_front([]) == []


def test_status_uses_the_runs_max_drop_and_defaults_to_one_point():
    report = make_report()  # drops: 0, 0, 0.5, 2.0 points
    assert statuses(report) == ["pass", "pass", "pass", "fail"]
    assert statuses(make_report(max_drop=2.0)) == ["pass"] * 4  # exactly the limit passes
    assert report_html.max_drop(make_report(max_drop=0.2)) == (0.2, "gate.max_drop")
    # A report from before gate.max_drop was the one source: the quantize stage's config held it.
    legacy = make_report()
    del legacy["max_drop"]
    legacy["stages"][2]["config"] = {"max_drop": 2.0}
    assert report_html.max_drop(legacy) == (2.0, "quantize.max_drop")
    legacy["stages"] = [s for s in legacy["stages"] if s["name"] != "quantize"]
    assert report_html.max_drop(legacy) == (1.0, None)
    assert "at most 1.0 points below" in render(legacy) and "records no gate.max_drop" in render(legacy)
    gated = {**make_report(max_drop=0.2), "gates": {"model.int8.onnx": {"top1": 0.9, "passed": True}}}
    assert statuses(gated)[-1] == "pass"  # the gate's verdict, measured after the stage, wins


def test_page_has_one_row_per_artifact_with_status_and_an_embedded_chart():
    page = render(make_report())
    rows = rows_of(page)
    assert [r[0] for r in rows] == ["baseline", "baseline.onnx", "model.onnx", "model.int8.onnx"]
    assert [r[1].split()[-1] for r in rows] == ["pass", "pass", "pass", "fail"]
    assert "at most 1.0 points below the baseline" in page
    assert page.count("<svg") == 2  # accuracy vs latency, stage times
    assert all(f">{name}</text>" in page for name in ("baseline.onnx", "model.int8.onnx"))  # labelled points
    assert "chart unavailable" not in page
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", page)
    assert not [r for r in refs if r.startswith(("http", "//"))]  # nothing fetched: opens offline
    assert "<script" not in page and "<link" not in page


def test_text_is_escaped():
    report = make_report([row("<script>alert(1)</script>", 0.9, 0.3), row("a&b $x$", 0.9, 0.2)])
    report["error"], report["notes"] = "<b>bad</b>", ["<i>note</i>"]
    page = render(report)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>bad</b>" not in page and "<i>note</i>" not in page and "a&amp;b $x$" in page


def test_page_without_matplotlib_keeps_the_table(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'", name="matplotlib")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    page = render(make_report())
    assert "chart unavailable (matplotlib is not installed" in page and "<svg" not in page
    assert len(rows_of(page)) == 4


def test_failed_run_without_results_still_renders():
    report = make_report([])
    report["status"], report["error"] = "failed in train", "out of memory"
    page = render(report)
    assert "failed in train" in page and "No results" in page and "out of memory" in page


def test_write_puts_report_html_next_to_report_md(tmp_path, capsys):
    from edgekit import report
    from edgekit.artifact import Artifact, RunInfo, StageRecord

    data = make_report()
    art = Artifact(
        tmp_path,
        info=RunInfo(model="lenet", data={"name": "fashion_mnist"}, results=data["results"]),
        history=[StageRecord(**s) for s in data["stages"]],
    )
    report.write(art)
    assert (tmp_path / "report.md").is_file() and not list(tmp_path.glob(".*.tmp"))  # written atomically
    page = (tmp_path / "report.html").read_text()
    assert [r[0] for r in rows_of(page)] == ["baseline", "baseline.onnx", "model.onnx", "model.int8.onnx"]


def test_report_command_marks_cells_that_differ(tmp_path, capsys):
    a = write_run(tmp_path / "a", make_report(run_dir=str(tmp_path / "a")))
    rows = make_report()["results"]
    rows[3] = {**rows[3], "top1": 0.884, "latency_ms": {**rows[3]["latency_ms"], "p50": 0.12}}  # +0.4 points, -20%
    rows[2] = {
        **rows[2],
        "top1": 0.8955,
        "latency_ms": {**rows[2]["latency_ms"], "p50": 0.204},
    }  # noise: +0.05 points, +2%
    b = write_run(tmp_path / "b", make_report(rows, run_dir=str(tmp_path / "b")))
    page = tmp_path / "out" / "compare.html"
    assert main(["report", str(a), str(b), "--html", str(page)]) == 0
    out = capsys.readouterr().out
    assert "at least 0.1 points" in out and "at least 5%" in out  # the rule is stated
    int8_rows = [line for line in out.splitlines() if line.startswith("| model.int8.onnx")]
    assert len(int8_rows) == 2 and "**" not in int8_rows[0]
    assert "**88.40% ↑+0.40pt**" in int8_rows[1] and "**0.120 ↓-20%**" in int8_rows[1]
    model_row = [line for line in out.splitlines() if line.startswith("| model.onnx")][1]
    assert "**" not in model_row  # below the noise thresholds
    html = page.read_text()
    assert (
        'class="better">88.40% <small>↑+0.40pt</small></td>' in html
        and 'class="better">0.120 <small>↓-20%</small></td>' in html
    )
    assert html.count("<svg") == 1 and "chart unavailable" not in html


def test_diff_marks_say_better_or_worse():
    first = make_report()
    slower = make_report(
        [{**r, "latency_ms": {**r["latency_ms"], "p50": r["latency_ms"]["p50"] * 1.5}} for r in first["results"]]
    )
    marks = diff_marks(first, slower)
    assert marks[("model.onnx", "p50 ms")] == ("↑+50%", "worse")
    assert ("model.onnx", "top-1") not in marks


@pytest.mark.parametrize(
    "make, problem",
    [
        (lambda p: p / "missing", "does not exist"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "has no report.json"),
        (lambda p: (p / "file.txt").write_text("x") and p / "file.txt", "is not a run folder"),
        (
            lambda p: (
                write_run(p / "broken", {}) and (p / "broken" / "report.json").write_text("{not json") and p / "broken"
            ),
            "is not valid JSON",
        ),
        (lambda p: write_run(p / "other", {"hello": 1}), "is not an edgekit report"),
    ],
)
def test_report_command_bad_folder_is_one_line_exit_2(tmp_path, capsys, make, problem):
    good = write_run(tmp_path / "good", make_report())
    assert main(["report", str(good), str(make(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and problem in err and "edgekit" in err


@pytest.mark.browser
@pytest.mark.skipif(
    not Path(CHROMIUM).is_file(), reason=f"{CHROMIUM} missing: apt-get install chromium (make test does it as root)"
)
def test_chromium_renders_the_page(tmp_path):
    page = tmp_path / "report.html"
    page.write_text(render(make_report()))
    flags = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*flags, f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri()],
        capture_output=True,
        timeout=60,
        check=True,
    )
    dom = subprocess.run(
        [*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=60, check=True
    ).stdout

    from PIL import Image

    img = Image.open(shot).convert("RGB")
    assert img.size == (1200, 1600)
    small = img.resize((300, 400))
    pixels = [small.getpixel((x, y)) for x in range(300) for y in range(400)]
    assert len(set(pixels)) > 50  # text, table stripes, coloured points: not a blank or error page
    assert sum(p != (255, 255, 255) for p in pixels) > 0.03 * len(pixels)
    rows = rows_of(dom)
    assert [r[0] for r in rows] == ["baseline", "baseline.onnx", "model.onnx", "model.int8.onnx"]
    assert [r[1].split()[-1] for r in rows] == ["pass", "pass", "pass", "fail"]
    assert dom.count("<svg") == 2
