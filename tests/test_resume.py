"""Runs that survive: a scripted kill during distillation and a resume that finishes like an
uninterrupted run without retraining; the manifest's hash checks; accuracy gates."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import FAST_SETS, sets
from edgekit.checkpoint import read_state_dict
from edgekit.cli import main

ARGS = [
    *("compress", "lenet", "--prune", "0.3", "--int8", "--epochs", "2", "--distill-epochs", "3"),
    *sets({**FAST_SETS, "quantize.calib_images": 64, "train.cache": "false"}),
]


def _rows(run: Path) -> dict:
    return {r["artifact"]: r for r in json.loads((run / "report.json").read_text())["results"]}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same run, uninterrupted."""
    out = tmp_path_factory.mktemp("reference")
    assert main([*ARGS, "--output", str(out)]) == 0
    (run,) = list(out.iterdir())
    return run


def test_kill_during_distillation_then_resume_finishes_like_an_uninterrupted_run(tmp_path, reference, capsys):
    out = tmp_path / "artifacts"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgekit", *ARGS, "--output", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    seen = []
    for line in proc.stdout:  # kill once the first distillation epoch is checkpointed and the second is under way
        seen.append(line)
        if line.startswith("distill epoch 2/3"):
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(seen[-20:])
    (run,) = list(out.iterdir())
    assert (run / ".distill.epoch.pt").is_file() and not (run / "distilled.pt").exists()
    stages = [s["name"] for s in json.loads((run / "manifest.json").read_text())["stages"]]
    assert stages == ["load", "train", "search", "prune"]

    capsys.readouterr()
    assert main(["run", "--resume", str(run)]) == 0
    log = capsys.readouterr()
    text = log.out + log.err
    assert "resuming" in text and "after prune" in text and "distill: resuming after epoch 1/3" in text
    assert "== train" not in text and "train epoch" not in text  # training was not redone
    report = json.loads((run / "report.json").read_text())
    assert report["status"] == "ok" and [s["name"] for s in report["stages"]] == [
        "load",
        "train",
        "search",
        "prune",
        "distill",
        "export",
        "quantize",
        "rewrite",
        "build",
        "validate",
    ]
    assert not (run / ".distill.epoch.pt").exists()
    # Exact, not within noise: the epoch checkpoint holds the weights, the optimizer, the data order and
    # torch's RNG, so the resumed distillation computes what the uninterrupted one computed.
    resumed, uninterrupted = read_state_dict(run / "distilled.pt"), read_state_dict(reference / "distilled.pt")
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)
    got, ref = _rows(run), _rows(reference)
    for name in ("baseline", "distilled", "model.onnx", "model.int8.onnx"):
        assert got[name]["top1"] == ref[name]["top1"], (name, got[name]["top1"], ref[name]["top1"])


@pytest.fixture
def unfinished(reference, tmp_path):
    """A copy of the reference run as it would be if it had stopped before validate."""
    run = tmp_path / reference.name
    run.mkdir()
    for p in reference.iterdir():
        (run / p.name).write_bytes(p.read_bytes())
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["stages"] = manifest["stages"][:-1]
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


def test_resume_refuses_a_changed_file(unfinished, capsys):
    (unfinished / "model.onnx").write_bytes((unfinished / "model.onnx").read_bytes() + b"\0")
    assert main(["run", "--resume", str(unfinished)]) == 2
    err = capsys.readouterr().err
    assert "model.onnx changed since its stage finished" in err and err.count("\n") == 1


def test_resume_runs_only_what_is_left(unfinished, capsys):
    assert main(["compress", "--resume", str(unfinished)]) == 0
    text = capsys.readouterr().out
    assert "== validate" in text and "== export" not in text and "== quantize" not in text


@pytest.mark.parametrize(
    "argv,words",
    [
        (["run", "--resume", "{run}", "--prune", "0.5", "--set", "a.b=1"], "so --prune, --set cannot be given with it"),
        (["compress", "lenet", "--resume", "{run}"], "MODEL cannot be given with it"),
        (["run", "--resume", "{run}"], "finished every stage: nothing to resume"),
        (["run", "--resume", "{missing}"], "does not exist"),
        (["run"], "run needs a RECIPE file"),
    ],
)
def test_resume_bad_input(reference, tmp_path, capsys, argv, words):
    argv = [a.format(run=reference, missing=tmp_path / "nope") for a in argv]
    assert main(argv) == 2
    assert words in capsys.readouterr().err


def test_a_failed_gate_stops_later_stages_and_names_what_to_ship(tmp_path, capsys):
    """Forced, not left to chance: 70% of every layer pruned and no fine-tune (distill.epochs 0), so the
    exported model.onnx is far below the baseline and the export stage's gate must fail."""
    out = tmp_path / "artifacts"
    args = [a if a != "0.3" else "0.7" for a in ARGS]
    rc = main([*args, "--output", str(out), "--set", "distill.epochs=0", "--max-drop", "1"])
    (run,) = list(out.iterdir())
    report = json.loads((run / "report.json").read_text())
    stages = {s["name"]: s["metrics"] for s in report["stages"]}
    assert stages["distill"]["skipped"] == "distill.epochs is 0"
    assert stages["export"]["gate"]["results"]["model.onnx"]["drop_vs_baseline"] > 5  # the construction holds
    assert rc == 1 and report["status"] == "failed accuracy gate"
    assert stages["export"]["failed"].startswith("accuracy gate: model.onnx is")
    assert "baseline.onnx" not in stages["export"]["gate"]["results"]  # the baseline in ONNX is not judged
    assert all("failed its accuracy gate" in stages[s]["skipped"] for s in ("quantize", "rewrite", "build", "validate"))
    assert report["ship"] is None  # nothing passed
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress lines, one error line
    assert last.startswith("error: accuracy gate failed in export: model.onnx is") and "no artifact passed" in last


def test_keep_going_runs_every_stage_and_ships_the_fastest_passing_artifact(tmp_path, capsys):
    """Forced: 70% of every layer pruned, judged before its fine-tune against a stage limit of 0 points,
    fails the prune stage's gate; --keep-going still distils, exports, quantizes and validates."""
    out = tmp_path / "artifacts"
    args = [{"0.3": "0.7", "3": "1"}.get(a, a) for a in ARGS]
    argv = [*args, "--output", str(out), "--max-drop", "100", "--set", "gate.stage_max_drop={prune: 0}", "--keep-going"]
    rc = main(argv)
    (run,) = list(out.iterdir())
    report = json.loads((run / "report.json").read_text())
    stages = {s["name"]: s["metrics"] for s in report["stages"]}
    pruned = stages["prune"]["gate"]["results"]["pruned"]
    assert pruned["input"] == "baseline" and pruned["drop_vs_input"] > 5 and not pruned["passed"]
    assert rc == 1 and report["status"] == "failed accuracy gate"
    assert all("skipped" not in stages[s] for s in ("distill", "export", "quantize", "validate"))  # kept going
    rows = {r["artifact"]: r for r in report["results"]}
    passed = [n for n, g in report["gates"].items() if g["passed"]]
    assert set(passed) == {"distilled", "model.onnx", "model.int8.onnx"}  # within max_drop 100 of the baseline
    assert report["ship"]["artifact"] == min(passed, key=lambda n: rows[n]["latency_ms"]["p50"])


def test_run_folders_are_unique_within_one_second_and_never_reused(tmp_path, monkeypatch):
    import time as time_module

    from edgekit import pipeline
    from edgekit.recipe import from_dict

    monkeypatch.setattr(time_module, "strftime", lambda fmt, *a: "20260101-000000")  # every call in the same second
    recipe = from_dict({}, "test", {"model.name": "lenet", "run.output": str(tmp_path)})
    folders = {pipeline.make_run_dir(recipe) for _ in range(20)}
    assert len(folders) == 20 and all(p.is_dir() and not any(p.iterdir()) for p in folders)
