"""The whole run's ETA: each stage's planned work over the throughput this run measured for that kind of
work, 'ETA unknown' before anything is measured; and the lines a real small run logs."""

import io
import logging
import re

import pytest

import edgekit
from conftest import SLICE
from edgekit import progress
from edgekit.backends.tensorrt.progress_monitor import BuildProgress
from edgekit.progress import INFER, SECONDS, TRAIN, Progress, RunEta, run_clock
from edgekit.recipe import Recipe
from edgekit.stages import ORDER
from edgekit.stages.context import Context
from edgekit.stages.work import planned


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


PLAN = {
    "load": {},  # nothing planned: left out of the estimate
    "train": {TRAIN: 3000},
    "distill": {TRAIN: 1500},
    "quantize": {INFER: 500},
    "validate": {INFER: 1000, SECONDS: 10},
}


def test_the_estimate_comes_from_measured_rates_only():
    clock = Clock()
    eta = RunEta(PLAN, clock)
    eta.begin("train")
    assert eta.line() == "run 0s elapsed, ETA unknown (not measured yet: train, distill, quantize, validate)"
    clock.now = 2.0
    eta.count(TRAIN, 100)  # the first batch: its start is unknown, so it times nothing yet
    assert eta.rate(TRAIN) is None
    clock.now = 12.0
    eta.count(TRAIN, 1000)  # 1,000 images in the 10 s since the first report: 100 img/s
    assert eta.rate(TRAIN) == 100.0
    # train: (3000 - 1100) / 100 = 19 s, distill 1500 / 100 = 15 s; no image inferred yet.
    assert eta.line() == "run 12s elapsed, ETA 34s + quantize, validate (not measured yet)"
    clock.now = 31.0
    eta.count(TRAIN, 1900)
    eta.finish()
    assert eta.measured == {TRAIN: (2900, 29.0)}

    eta.begin("distill")
    assert eta.line() == "run 31s elapsed, ETA 15s + quantize, validate (not measured yet)"
    clock.now = 32.0
    eta.count(TRAIN, 700)
    clock.now = 38.0
    eta.count(TRAIN, 800)  # distilling runs at 800 / 6 img/s: the pooled rate is 3700 / 35 s
    eta.finish()
    eta.begin("quantize")
    assert eta.line() == "run 38s elapsed, ETA unknown (not measured yet: quantize, validate)"
    clock.now = 43.0
    eta.finish()  # 500 planned images in 5 s: 100 img/s, by the stage's wall time (no bar counts them)
    eta.begin("validate")
    assert eta.line() == "run 43s elapsed, ETA 20s"  # 1000 images at 100 img/s + 10 configured seconds
    clock.now = 53.0
    assert eta.line() == "run 53s elapsed, ETA 10s"
    clock.now = 70.0
    assert eta.line() == "run 1m10s elapsed, ETA 0s"
    eta.finish()
    assert eta.line() == "run 1m10s elapsed"


def test_a_stage_that_did_not_do_its_planned_training_measures_nothing():
    """A baseline found in the cache: 3,000 planned images in a second must not make training look fast."""
    clock = Clock()
    eta = RunEta(PLAN, clock)
    eta.begin("train")
    clock.now = 1.0
    eta.finish()
    eta.begin("distill")
    assert eta.rate(TRAIN) is None and eta.line().endswith(
        "ETA unknown (not measured yet: distill, quantize, validate)"
    )


def test_a_stage_planning_two_kinds_does_not_split_its_time_by_guess():
    clock = Clock()
    eta = RunEta({"quantize": {INFER: 500, TRAIN: 1000}, "validate": {INFER: 100}}, clock)
    eta.begin("quantize")
    clock.now = 5.0
    eta.finish()
    assert eta.rate(INFER) is None and eta.rate(TRAIN) is None


def test_begin_replaces_the_plan_with_the_stages_still_to_run():
    eta = RunEta(PLAN, Clock())
    eta.begin("quantize", {"quantize": {INFER: 500}, "validate": {INFER: 10}})
    assert list(eta.plan) == ["quantize", "validate"]


def test_a_training_bar_reports_to_the_run_clock_and_shows_its_eta(monkeypatch):
    monkeypatch.setattr(progress, "progress_shown", lambda: True)
    clock = Clock()
    eta = RunEta({"train": {TRAIN: 300}}, clock)
    eta.begin("train")
    out = io.StringIO()
    with run_clock(eta):
        bar = Progress("train epoch 1/1", 300, stream=out, work=TRAIN)
        plain = Progress("calibrate", 10, stream=io.StringIO())  # not planned work: reports nothing
        for t in (1.0, 2.0, 3.0):
            clock.now = t
            bar.update(100, loss=0.5)
        plain.update(10)
    assert progress.current_run() is None  # the clock is the run's only while it runs
    assert eta.counts[TRAIN].total == 300 and eta.rate(TRAIN) == 100.0
    last = out.getvalue().splitlines()[-1]
    assert last.startswith("train epoch 1/1 [300/300]") and last.endswith("loss 0.5  | run 3s elapsed, ETA 0s")


def test_a_tensorrt_build_line_shows_the_runs_eta():
    clock = Clock()
    out = io.StringIO()
    with run_clock(RunEta({"build": {"engine": 1}}, clock)) as eta:
        eta.begin("build")
        build = BuildProgress("m.onnx", stream=out, interval=0.0, clock=clock)
        build.enabled = True
        build.phase_start("Build", None, 1)
        build.step_complete("Build", 0)
    assert out.getvalue().splitlines()[-1] == (
        "m.onnx: Build 1/1  0s  | run 0s elapsed, ETA unknown (not measured yet: build)"
    )


def test_planned_work_from_the_recipe(fmnist_slice, tmp_path):
    recipe = Recipe()
    recipe.prune.ratio, recipe.quantize.enabled, recipe.distill.epochs = 0.3, True, 2
    art = edgekit.artifact.Artifact(tmp_path)
    plan = planned(ORDER, art, Context(recipe, fmnist_slice, tmp_path))
    n = len(fmnist_slice.train)
    assert plan["train"] == {TRAIN: recipe.train.epochs * n} and plan["distill"] == {TRAIN: 2 * n}
    assert plan["quantize"] == {INFER: 512 + 2 * 1000}  # calibration, then fp32 and int8 on held-out images
    assert "build" not in plan and "load" not in plan  # the CPU target builds no engine
    rows = plan["validate"][INFER] / len(fmnist_slice.val)
    # baseline, pruned, distilled, the baseline/onnx/int8 ONNX files, the rewrite's two; and model.fp16.onnx,
    # which export declares but makes only with export.fp16: the count is an upper estimate until validate.
    assert rows == 9
    assert plan["validate"][SECONDS] == pytest.approx(rows * 2 * (0.5 + 1.0 + 5 * 0.1))


def test_a_small_run_logs_the_runs_eta(tmp_path, caplog, capsys, monkeypatch):
    """load, train (one epoch), export, validate on the shipped slice: a few seconds."""
    monkeypatch.setattr(progress, "progress_shown", lambda: True)
    settings = {
        "data.root": str(SLICE),
        "train.epochs": 1,
        "train.cache": False,
        "validate.min_seconds": 0.05,
        "validate.min_runs": 5,
        "validate.warmup_s": 0,
        "validate.rounds": 1,
        "validate.openvino": "off",
    }
    with caplog.at_level(logging.INFO, logger="edgekit"):
        edgekit.compress("lenet", output=tmp_path, settings=settings)
    starts = [r.getMessage() for r in caplog.records if r.getMessage().startswith("== ")]
    assert [s.split("  | ")[0] for s in starts] == ["== load", "== train", "== export", "== validate"]
    assert starts[1] == "== train  | run 0s elapsed, ETA unknown (not measured yet: train, validate)"
    assert re.fullmatch(r"== validate  \| run \d+s elapsed, ETA unknown \(not measured yet: validate\)", starts[3])
    epochs = [line for line in capsys.readouterr().err.splitlines() if line.startswith("train epoch 1/1")]
    assert "ETA unknown" in epochs[0]  # one batch times nothing
    assert re.search(r"\| run \d+s elapsed, ETA \d+s \+ validate \(not measured yet\)$", epochs[-1]), epochs
