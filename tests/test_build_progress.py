"""The TensorRT build's progress monitor (IProgressMonitor, TensorRT >= 10), driven through a fake build
(tests/fake_tensorrt.py): nested phases as progress lines, rate-limited, silenced with the edgekit
logger, and Ctrl-C cancelling the build by returning False from step_complete. What real TensorRT
reports (its phase names, threads, step counts) stays unverified here."""

import io
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import fake_tensorrt
from edgekit.backends.tensorrt import progress_monitor
from edgekit.backends.tensorrt.builder import build_engine
from edgekit.backends.tensorrt.options import BuildOptions
from edgekit.backends.tensorrt.progress_monitor import BuildProgress

IDENTITY = {"tensorrt": "10.3.0", "gpu": "Orin (nvgpu)", "compute_capability": "8.7", "l4t": "36.4.0"}
OPTIONS = BuildOptions(timing_cache="")


@pytest.fixture
def src(tmp_path) -> Path:
    """A one-conv classifier with a dynamic batch."""
    w = numpy_helper.from_array(np.ones((4, 1, 3, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["logits"])],
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)],
        [w],
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return path


@pytest.fixture
def shown(monkeypatch):
    monkeypatch.setattr(progress_monitor, "progress_shown", lambda: True)


def test_a_build_reports_its_nested_phases(src, tmp_path, shown, capsys):
    trt = fake_tensorrt.make("10.3.0")
    build_engine(src, tmp_path / "m.engine", OPTIONS, IDENTITY, trt=trt)
    assert ("IProgressMonitor.__init__",) in trt.calls  # the pybind11 base class is initialised
    steps = [c for c in trt.calls if c[0] == "step"]
    assert len(steps) == 8 and all(c[3] for c in steps)  # 2 x 3 nested steps + 2 outer ones, none cancelled
    assert ("phase_finish", "Building engine") in trt.calls and (tmp_path / "m.engine").is_file()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "m.onnx: Building engine (2 steps)"
    assert lines[1].startswith("m.onnx: Building engine 0/2 > Tactic selection 1/3  0s")  # the first step
    assert lines[-1] == "m.onnx: Building engine done in 0s"
    assert len(lines) == 3  # the other steps fell inside the log interval; nested phases get no own lines


def test_step_lines_are_rate_limited_and_show_the_phase_path():
    now = [0.0]
    out = io.StringIO()
    progress = BuildProgress("e.onnx", stream=out, interval=5.0, clock=lambda: now[0])
    progress.enabled = True
    progress.phase_start("Build", None, 2)
    progress.phase_start("Tactics", "Build", 100)
    for step, t in enumerate([0.0, 1.0, 4.9, 6.0, 7.0, 70.0]):
        now[0] = t
        assert progress.step_complete("Tactics", step)
    progress.phase_finish("Tactics")
    progress.phase_finish("Build")
    assert out.getvalue().splitlines() == [
        "e.onnx: Build (2 steps)",
        "e.onnx: Build 0/2 > Tactics 1/100  0s",
        "e.onnx: Build 0/2 > Tactics 4/100  6s",
        "e.onnx: Build 0/2 > Tactics 6/100  1m10s",
        "e.onnx: Build done in 1m10s",
    ]


def test_progress_lines_follow_the_edgekit_logger(src, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(progress_monitor, "progress_shown", lambda: False)
    build_engine(src, tmp_path / "m.engine", OPTIONS, IDENTITY, trt=fake_tensorrt.make("10.3.0"))
    assert capsys.readouterr().err == ""


def test_ctrl_c_during_a_callback_cancels_the_build_cleanly(src, tmp_path, shown, monkeypatch, capsys):
    """SIGINT raises KeyboardInterrupt in whatever Python code runs, here the monitor's callback: it must
    not cross into TensorRT; the build stops at the next step and the builder raises it afterwards."""
    original, seen = BuildProgress._step, []

    def interrupted(self, name, step):
        seen.append(step)
        if len(seen) == 2:
            raise KeyboardInterrupt
        original(self, name, step)

    monkeypatch.setattr(BuildProgress, "_step", interrupted)
    trt = fake_tensorrt.make("10.3.0")
    with pytest.raises(KeyboardInterrupt):
        build_engine(src, tmp_path / "m.engine", OPTIONS, IDENTITY, trt=trt)
    steps = [c for c in trt.calls if c[0] == "step"]
    assert steps == [("step", "Tactic selection", 0, True), ("step", "Tactic selection", 1, False)]
    assert ("phase_finish", "Building engine") not in trt.calls  # the fake's successful end was never reached
    assert not list(tmp_path.glob("m.engine*"))  # no engine, no stamp
    assert "m.onnx: Ctrl-C: cancelling the TensorRT build" in capsys.readouterr().err


def test_tensorrt_without_a_progress_monitor_builds_as_before(src, tmp_path):
    trt = fake_tensorrt.make("10.3.0", progress_monitor=False)
    info = build_engine(src, tmp_path / "m.engine", OPTIONS, IDENTITY, trt=trt)
    assert info["typing"] == "strong" and (tmp_path / "m.engine").is_file()
    assert not [c for c in trt.calls if c[0] in ("IProgressMonitor.__init__", "step")]


def test_a_failing_display_never_ends_the_build(src, tmp_path, shown, monkeypatch):
    class Broken(io.StringIO):
        def write(self, text):
            raise OSError("closed pipe")

    monkeypatch.setattr("sys.stderr", Broken())
    trt = fake_tensorrt.make("10.3.0")
    build_engine(src, tmp_path / "m.engine", OPTIONS, IDENTITY, trt=trt)
    assert (tmp_path / "m.engine").is_file() and all(c[3] for c in trt.calls if c[0] == "step")
