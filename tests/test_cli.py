"""The command line end to end on the shipped Fashion-MNIST slice, and its bad-input behaviour."""

import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import SLICE
from edgekit.cli import main

FAST = [
    "--set",
    f"data.root={SLICE}",
    "--set",
    "validate.min_seconds=0.05",
    "--set",
    "validate.min_runs=5",
    "--set",
    "validate.warmup_s=0",
    "--set",
    "quantize.calib_images=64",
]


def _snapshot(folder: Path) -> dict:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def lenet_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("artifacts")
    rc = main(
        [
            "compress",
            "lenet",
            "--prune",
            "0.3",
            "--int8",
            "--epochs",
            "10",
            "--distill-epochs",
            "6",
            "--output",
            str(out),
            *FAST,
        ]
    )
    assert rc == 0
    (run,) = list(out.iterdir())
    return out, run


def test_compress_leaves_a_complete_run_folder(lenet_run):
    _, run = lenet_run
    for name in (
        "recipe.yaml",
        "report.json",
        "report.md",
        "baseline.pt",
        "pruned.pt",
        "distilled.pt",
        "baseline.onnx",
        "model.onnx",
        "model.int8.onnx",
    ):
        assert (run / name).is_file(), name
    report = json.loads((run / "report.json").read_text())
    assert [s["name"] for s in report["stages"]] == [
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
    assert all({"name", "seconds", "metrics"} <= set(s) for s in report["stages"])
    rows = {r["artifact"]: r for r in report["results"]}
    own = ["baseline", "pruned", "distilled", "baseline.onnx", "model.onnx", "model.int8.onnx"]
    # OpenVINO rows follow the own rows whenever it is installed (the set-up installs it).
    openvino = [f"{name} (openvino)" for name in own[3:]] if importlib.util.find_spec("openvino") else []
    assert list(rows) == own + openvino
    assert all(rows[name]["of"] == name.split(" ")[0] for name in rows)
    for r in rows.values():
        assert {
            "artifact",
            "format",
            "precision",
            "backend",
            "params",
            "macs",
            "size_mb",
            "top1",
            "top5",
            "latency_ms",
            "throughput_ips",
        } <= set(r)
        assert set(r["latency_ms"]) == {"p50", "p90", "p99"} and r["latency_ms"]["p50"] > 0 and r["throughput_ips"] > 0
    assert rows["baseline"]["top1"] > 0.6  # LeNet learns real Fashion-MNIST even from 1,500 images
    assert rows["baseline.onnx"]["top1"] == pytest.approx(rows["baseline"]["top1"], abs=0.005)
    # Every deliverable, not only the baseline: pruning plus distillation, the export and int8 each stay
    # within the run's allowed drop (gate.max_drop, 1 point by default) of the baseline.
    assert report["max_drop"] == 1.0
    for name in ("distilled", "model.onnx", "model.int8.onnx"):
        drop = (rows["baseline"]["top1"] - rows[name]["top1"]) * 100
        assert drop <= report["max_drop"], (name, rows[name]["top1"], rows["baseline"]["top1"])
    assert rows["pruned"]["top1"] < rows["distilled"]["top1"]  # the recovery stage earned its place
    assert rows["model.onnx"]["macs"] < 0.7 * rows["baseline"]["macs"]
    assert rows["model.int8.onnx"]["size_mb"] < 0.5 * rows["model.onnx"]["size_mb"]
    assert rows["model.int8.onnx"]["precision"] == "int8"
    assert {"python", "torch", "onnxruntime", "torch_pruning", "cpu", "threads"} <= set(report["env"])
    assert "| model.int8.onnx |" in (run / "report.md").read_text()


def test_recipe_in_run_folder_reproduces_the_run(lenet_run, capsys):
    out, run = lenet_run
    before = _snapshot(run)
    assert main(["run", str(run / "recipe.yaml")]) == 0
    runs = sorted(p for p in out.iterdir())
    assert len(runs) == 2 and _snapshot(run) == before  # a new folder; the first one untouched
    again = next(p for p in runs if p != run)
    assert yaml.safe_load((again / "recipe.yaml").read_text()) == yaml.safe_load((run / "recipe.yaml").read_text())
    stages = {s["name"]: s for s in json.loads((again / "report.json").read_text())["stages"]}
    assert stages["train"]["metrics"]["cached"] is True  # the baseline came from the cache


def test_bench_and_eval_commands(lenet_run, capsys):
    _, run = lenet_run
    assert main(["bench", str(run / "model.int8.onnx"), "--seconds", "0.1", "--json"]) == 0
    bench = json.loads(capsys.readouterr().out)
    assert bench["latency_ms"]["p50"] > 0 and bench["throughput_ips"] > 0
    report = json.loads((run / "report.json").read_text())
    expected = next(r["top1"] for r in report["results"] if r["artifact"] == "model.int8.onnx")
    assert main(["eval", str(run / "model.int8.onnx"), "--data", str(SLICE), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 500 and result["top1"] == pytest.approx(expected, abs=1e-4)


def test_models_and_help(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "mobilenet_v3_small" in out and "mobilenet_v3 -> mobilenet_v3_small" in out and "2.54M" in out
    for cmd in (
        [],
        ["compress", "--help"],
        ["run", "--help"],
        ["bench", "--help"],
        ["eval", "--help"],
        ["models", "--help"],
    ):
        try:
            rc = main(cmd if cmd else ["--help"])
        except SystemExit as exc:
            rc = exc.code
        assert rc == 0
    assert "0.3 keeps 70%" in plain(capsys.readouterr().out)


def plain(help_text: str) -> str:
    """rich's help as one line of words: panel borders dropped, wrapped lines joined."""
    return " ".join(help_text.replace("│", " ").split())


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


BAD = [
    (["compress", "mobilenet_v33"], "unknown model 'mobilenet_v33': did you mean"),
    (["compress", "lenet", "--prune", "1.0"], "outside [0, 1)"),
    (["compress", "lenet", "--prune", "-0.1"], "outside [0, 1)"),
    (["compress", "lenet", "--prune", "abc"], "is not a number"),
    (["compress", "lenet", "--data", "/nonexistent/folder"], "does not exist"),
    (["compress", "lenet", "--weights", "/nonexistent.pt"], "does not exist"),
    (["compress", "lenet", "--set", "prune.ratioo=0.3"], "unknown key 'ratioo'"),
    (["compress", "lenet", "--set", "nonsense"], "is not KEY=VALUE"),
    (["run", "/nonexistent/recipe.yaml"], "does not exist"),
    (["bench", "/nonexistent.onnx"], "does not exist"),
    (["frobnicate"], "No such command 'frobnicate'"),
    (["compress", "lenet", "--prune", "0.3", "--target-macs", "0.5"], "prune.ratio and prune.target_macs are both set"),
    (
        ["compress", "lenet", "--target-macs", "0.5", "--target-latency-ms", "1"],
        "prune.target_macs and prune.target_latency_ms are both set",
    ),
    (["compress", "lenet", "--target-macs", "0"], "keeps no MACs"),
    (["compress", "lenet", "--max-drop", "-1"], "gate.max_drop = -1.0 is out of range"),
]


def test_a_target_flag_replaces_the_recipe_ratio(capsys, monkeypatch):
    """recipes set prune.ratio; --target-macs on `edgekit run` drives the run instead of conflicting."""
    import yaml

    monkeypatch.chdir(Path(__file__).parent.parent)
    assert main(["run", "recipes/mobilenet_v3_fashion_mnist.yaml", "--target-macs", "0.5", "--print-recipe"]) == 0
    prune = yaml.safe_load(capsys.readouterr().out)["prune"]
    assert prune["ratio"] == 0.0 and prune["target_macs"] == 0.5


@pytest.mark.parametrize("argv,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, argv, message):
    out = tmp_path / "artifacts"
    assert main([*argv, *(["--output", str(out)] if argv[0] in ("compress", "run") else [])]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and message in err
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda d: _write(d / "r.yaml", "prune:\n  ratio: 2\n"), "prune.ratio = 2.0 is out of range"),
        (lambda d: _write(d / "r.yaml", "model:\n  name: lenet\n  colour: red\n"), "unknown key 'colour'"),
        (lambda d: _write(d / "r.yaml", "model: [\n"), "invalid YAML at line"),
    ],
)
def test_bad_recipes(tmp_path, capsys, make, message):
    assert main(["run", str(make(tmp_path)), "--output", str(tmp_path / "a")]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "content,message",
    [
        (b"definitely not a checkpoint", "not a readable PyTorch checkpoint"),
        (None, "does not match model lenet5"),
    ],
)
def test_bad_weights_fail_with_one_line(tmp_path, capsys, content, message):
    import edgekit
    from edgekit.checkpoint import save_state_dict

    path = tmp_path / "w.pt"
    if content is None:
        save_state_dict(edgekit.create_model("mobilenet_v3_small", num_classes=10, in_chans=1, width_mult=0.5), path)
    else:
        path.write_bytes(content)
    out = tmp_path / "a"
    assert main(["compress", "lenet", "--weights", str(path), "--output", str(out), *FAST]) == 2
    assert message in capsys.readouterr().err


def test_console_exit_code_and_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "edgekit", "compress", "lenett"], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown model 'lenett': did you mean lenet")
    debug = subprocess.run(
        [sys.executable, "-m", "edgekit", "--debug", "compress", "lenett"], capture_output=True, text=True
    )
    assert "Traceback" in debug.stderr


def test_weights_for_other_classes_start_a_transfer_run(tmp_path, capsys):
    """A checkpoint trained for 5 classes starts a 10-class run: everything but the classifier loads, the
    classifier is re-initialised (said in the log and the report), and the train stage fine-tunes it."""
    import edgekit
    from edgekit.checkpoint import read_state_dict, save_state_dict

    torch = pytest.importorskip("torch")
    torch.manual_seed(3)
    source = edgekit.create_model("lenet5", num_classes=5, in_chans=1, small_input=True)
    save_state_dict(source, tmp_path / "w.pt")
    out = tmp_path / "a"
    argv = ["compress", "lenet", "--weights", str(tmp_path / "w.pt"), "--epochs", "1", "--output", str(out), *FAST]
    assert main([*argv, "--set", "train.freeze_backbone_epochs=1"]) == 0
    assert "classifier fc2 re-initialised for 10 classes (the weights were for 5)" in capsys.readouterr().out
    (run,) = list(out.iterdir())
    report = json.loads((run / "report.json").read_text())
    stages = {s["name"]: s["metrics"] for s in report["stages"]}
    assert stages["load"]["transfer"] == {"classifier": "fc2", "checkpoint_classes": 5, "classes": 10}
    assert "skipped" not in stages["train"] and not stages["train"]["cached"]
    assert any("re-initialised" in n for n in report["notes"])
    trained = read_state_dict(run / "baseline.pt")
    # the backbone was frozen for the one epoch: it is the checkpoint's; the classifier learned
    for key, value in source.state_dict().items():
        if not key.startswith("fc2."):
            assert torch.equal(trained[key], value), key
    assert trained["fc2.weight"].shape[0] == 10
