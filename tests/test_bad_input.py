"""The bad-input catalogue (docs/bad-input.md), case by case through the command line.

Every case must end with exit code 2 and exactly one stderr line that names the problem and the fix,
with no traceback; run folders that already exist under --output stay byte-identical, and a case whose
error can be found before the run starts leaves no new run folder behind. The few cases that can only
fail once the run has started (the checkpoint does not fit the model built for the data, the disk
fills up during export) leave a run folder whose report names the failed stage, and no partial file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bad_inputs import (
    DATA,
    FAST,
    OLD_RUN,
    ROOT,
    Case,
    all_images_corrupt,
    class_without_images,
    classes_differ,
    corrupt_image_strict,
    data_root_missing,
    empty_folder,
    engine_file,
    evil_pickle,
    evil_torch_save,
    export_left_nothing,
    fake_gpu_runtime,
    full_disk,
    image_folder,
    lenet_state,
    no_evil_folder,
    no_marker,
    no_tensorrt,
    not_a_state_dict,
    other_model_state,
    output_is_file,
    output_parent_is_file,
    raw_file,
    recipe_case,
    snapshot,
    teacher_without_pruning,
    text_file,
    tiny_onnx,
    too_few_images,
    truncate,
)
from conftest import SLICE
from edgekit.cli import main


@pytest.fixture
def out(tmp_path) -> Path:
    """An --output folder that already holds a (small, fake) finished run folder."""
    root = tmp_path / "artifacts"
    run = root / OLD_RUN
    (run / "sub").mkdir(parents=True)
    (run / "recipe.yaml").write_text("model:\n  name: lenet\n")
    (run / "report.json").write_text(json.dumps({"status": "ok", "stages": []}))
    (run / "baseline.pt").write_bytes(os.urandom(512))
    (run / "model.onnx").write_bytes(os.urandom(256))
    (run / "sub" / "notes.txt").write_text("kept")
    return root


CASES = [
    # command line values
    Case(
        "unknown-model",
        lambda t: ["compress", "mobilenet_v4"],
        "unknown model 'mobilenet_v4'",
        "did you mean mobilenet_v3",
    ),
    Case(
        "prune-negative",
        lambda t: ["compress", "lenet", "--prune", "-0.1"],
        "is outside [0, 1)",
        "give the fraction of channels",
    ),
    Case("prune-one", lambda t: ["compress", "lenet", "--prune", "1"], "is outside [0, 1)", "e.g. 0.3"),
    Case(
        "prune-above-one",
        lambda t: ["compress", "lenet", "--prune", "30"],
        "--prune 30.0 is outside [0, 1)",
        "give the fraction",
    ),
    Case(
        "prune-not-a-number",
        lambda t: ["compress", "lenet", "--prune", "abc"],
        "--prune 'abc' is not a number",
        "give a fraction in [0, 1)",
    ),
    Case("prune-nan", lambda t: ["compress", "lenet", "--prune", "nan"], "is outside [0, 1)", "give the fraction"),
    Case(
        "set-not-key-value",
        lambda t: ["compress", "lenet", "--set", "prune.ratio"],
        "is not KEY=VALUE",
        "write e.g. --set",
    ),
    # recipes
    Case("recipe-missing", lambda t: ["run", str(t / "nope.yaml")], "does not exist", "give a path to a .yaml recipe"),
    Case(
        "recipe-unknown-key",
        recipe_case("model:\n  name: lenet\n  colour: red\n"),
        "model: unknown key 'colour'",
        "allowed keys: name, weights",
    ),
    Case(
        "recipe-unknown-section",
        recipe_case("model:\n  name: lenet\npruning:\n  ratio: 0.3\n"),
        "unknown key 'pruning'",
        "allowed keys: model, data",
    ),
    Case(
        "recipe-wrong-type",
        recipe_case("model:\n  name: lenet\nprune:\n  ratio: high\n"),
        "prune.ratio = 'high' is not allowed",
        "expected float",
    ),
    Case(
        "recipe-out-of-range",
        recipe_case("model:\n  name: lenet\nprune:\n  ratio: 1.5\n"),
        "prune.ratio = 1.5 is out of range",
        "allowed [0.0, 1.0)",
    ),
    Case(
        "recipe-section-not-mapping",
        recipe_case("model: lenet\n"),
        "model must be a mapping",
        "write it as `key: value` lines",
    ),
    Case(
        "recipe-not-mapping",
        recipe_case("- model\n- prune\n"),
        "a recipe must be a mapping of sections",
        "(model, data, train, ...)",
    ),
    Case(
        "recipe-missing-model-name",
        recipe_case("prune:\n  ratio: 0.3\n"),
        "required key model.name is missing",
        "--set model.name=NAME",
    ),
    Case(
        "recipe-invalid-yaml",
        recipe_case("model:\n  name: lenet\nprune: [0.3\nquantize:\n  enabled: true\n"),
        "invalid YAML at line 4",
        "fix the syntax there",
    ),
    Case(
        "recipe-python-tag",
        recipe_case("model: !!python/object/apply:os.system ['touch {t}/pwned']\n"),
        "YAML tag refused at line 1",
        "remove the tag",
        after=no_marker,
    ),
    Case(
        "run-name-escapes",
        lambda t: ["compress", "lenet", *DATA, "--set", "run.name=../evil"],
        "run.name '../evil' must be a plain folder name",
        "remove slashes",
        after=no_evil_folder,
    ),
    Case(
        "run-name-absolute",
        lambda t: ["compress", "lenet", *DATA, "--set", f"run.name={t}/evil"],
        "must be a plain folder name",
        "remove slashes",
        after=no_evil_folder,
    ),
    # stage order
    Case(
        "order-qat-without-int8",
        lambda t: ["compress", "lenet", "--qat", "on"],
        "qat.mode is on but quantize.enabled is false",
        "add --int8",
    ),
    Case(
        "order-qat-without-accuracy-check",
        lambda t: ["compress", "lenet", "--int8", "--qat", "on", "--set", "quantize.check_drop=false"],
        "QAT runs only inside the int8 accuracy check",
        "set quantize.check_drop: true",
    ),
    Case(
        "moved-key",
        lambda t: ["compress", "lenet", "--set", "quantize.target=tensorrt"],
        "quantize.target has moved to target.platform",
        "rename the key",
    ),
    Case(
        "order-teacher-without-pruning",
        teacher_without_pruning,
        "distill.teacher is set but nothing is pruned",
        "set --prune RATIO",
    ),
    Case(
        "teacher-weights-missing",
        lambda t: [
            "compress",
            "lenet",
            "--prune",
            "0.3",
            "--set",
            "distill.teacher=lenet5",
            "--set",
            f"distill.teacher_weights={t}/nope.pt",
        ],
        "teacher checkpoint",
        "check distill.teacher_weights",
    ),
    # data
    Case(
        "data-folder-missing",
        lambda t: ["compress", "lenet", "--data", str(t / "no_such_folder")],
        "does not exist",
        "give an existing folder with one sub-folder per class",
    ),
    Case(
        "data-unknown-name",
        lambda t: ["compress", "lenet", "--data", "imagenet"],
        "unknown data set 'imagenet'",
        "use one of fashion_mnist",
    ),
    Case("data-folder-empty", empty_folder, "has no class sub-folders", "put images in"),
    Case("data-class-without-images", class_without_images, "has no images", "add images or remove the folder"),
    Case("data-corrupt-image-strict", corrupt_image_strict, "broken.png is unreadable", "drop --strict-data"),
    Case("data-all-images-unreadable", all_images_corrupt, "none of the", "replace them with valid image files"),
    Case("data-classes-differ", classes_differ, "classes differ between", "use the same class folders in both"),
    Case(
        "data-too-few-images",
        too_few_images,
        "too few images to split off a validation set",
        "add images or give train/ and val/",
    ),
    Case(
        "data-fashion-mnist-files-missing",
        data_root_missing,
        "lacks Fashion-MNIST files",
        "put the four *-ubyte.gz files there",
    ),
    # checkpoints
    Case(
        "checkpoint-missing",
        lambda t: ["compress", "lenet", "--weights", str(t / "nope.pt")],
        "does not exist",
        "check the --weights path",
    ),
    Case(
        "checkpoint-truncated",
        lambda t: ["compress", "lenet", "--weights", str(truncate(lenet_state(t)))],
        "is not a readable PyTorch checkpoint (damaged or truncated archive",
        "torch.save(model.state_dict(), path)",
    ),
    Case(
        "checkpoint-random-bytes",
        lambda t: ["compress", "lenet", "--weights", str(raw_file(t / "r.pt", b"\x00" + os.urandom(4096)))],
        "is not a readable PyTorch checkpoint (neither a torch.save archive nor a pickle",
        "give a file written by torch.save",
    ),
    Case(
        "checkpoint-text-file",
        lambda t: ["compress", "lenet", "--weights", str(text_file(t / "w.pt", "hello\nworld\n"))],
        "it starts with b'hell'",
        "give a file written by torch.save",
    ),
    Case(
        "checkpoint-not-a-state-dict",
        not_a_state_dict,
        "holds no state_dict",
        "save it with torch.save(model.state_dict(), path)",
    ),
    Case(
        "checkpoint-pickle-runs-code",
        lambda t: evil_pickle(t, 2),
        "needs code execution to load and was refused",
        "save a plain state_dict",
        after=no_marker,
    ),
    Case(
        "checkpoint-pickle-protocol-5",
        lambda t: evil_pickle(t, 5),
        "is not a readable PyTorch checkpoint",
        "give a file written by torch.save",
        after=no_marker,
    ),
    Case(
        "checkpoint-torch-save-runs-code",
        evil_torch_save,
        "needs code execution to load and was refused",
        "save a plain state_dict",
        after=no_marker,
    ),
    Case(
        "checkpoint-shape-mismatch",
        lambda t: ["compress", "lenet", *FAST, "--weights", str(other_model_state(t))],
        "does not match model lenet5",
        "give weights saved from the same architecture",
        run_starts=True,
    ),
    # ONNX files for eval and bench
    Case(
        "eval-onnx-truncated",
        lambda t: ["eval", str(truncate(tiny_onnx(t))), "--data", str(SLICE)],
        "is not a loadable ONNX model",
        "give a valid .onnx file",
    ),
    Case(
        "eval-not-onnx",
        lambda t: ["eval", str(text_file(t / "m.onnx", "hello")), "--data", str(SLICE)],
        "is not a loadable ONNX model",
        "give a valid .onnx file",
    ),
    Case(
        "eval-onnx-without-metadata",
        lambda t: ["eval", str(tiny_onnx(t)), "--data", str(SLICE)],
        "has no edgekit normalization metadata",
        "evaluate a model exported by edgekit",
    ),
    Case(
        "bench-onnx-truncated",
        lambda t: ["bench", str(truncate(tiny_onnx(t))), "--seconds", "0.05"],
        "is not a loadable ONNX model",
        "give a valid .onnx file",
    ),
    Case(
        "bench-not-onnx",
        lambda t: ["bench", str(lenet_state(t)), "--seconds", "0.05"],
        "is not a loadable ONNX model",
        "give a valid .onnx file",
    ),
    # TensorRT engines (the runtime is faked as an H200 with TensorRT 10.7: the stamp check comes before TensorRT)
    Case(
        "engine-other-tensorrt",
        lambda t: ["bench", str(engine_file(t, tensorrt="10.3.0")), "--backend", "tensorrt"],
        "was built for another runtime (TensorRT 10.3.0 (built) vs 10.7.0 (here))",
        "rebuild it from model.int8.onnx",
        setup=fake_gpu_runtime,
    ),
    Case(
        "engine-other-gpu",
        lambda t: ["bench", str(engine_file(t, gpu="Orin (nvgpu)", compute_capability="8.7")), "--backend", "tensorrt"],
        "GPU Orin (nvgpu) (built) vs NVIDIA H200 (here)",
        "on this machine with `edgekit build model.int8.onnx`",
        setup=fake_gpu_runtime,
    ),
    Case(
        "engine-without-stamp",
        lambda t: ["bench", str(engine_file(t, stamp=False)), "--backend", "tensorrt"],
        "has no stamp model.int8.engine.json",
        "rebuild it from its ONNX file",
        setup=fake_gpu_runtime,
    ),
    Case(
        "engine-without-tensorrt",
        lambda t: ["build", str(tiny_onnx(t))],
        "tensorrt: unavailable (",
        "install TensorRT's Python package",
        setup=no_tensorrt,
    ),
    # output folder and disk
    Case("output-parent-is-a-file", output_parent_is_file, "is not writable", "choose another with --output"),
    Case("output-is-a-file", output_is_file, "is not writable", "choose another with --output"),
    Case(
        "disk-full-during-export",
        lambda t: ["compress", "lenet", *FAST],
        "no space left on the device while writing",
        "free disk space",
        run_starts=True,
        after=export_left_nothing,
        setup=full_disk,
    ),
]


def _argv(case: Case, tmp: Path, out: Path) -> list[str]:
    argv = case.argv(tmp)
    if argv[0] in ("compress", "run") and "--output" not in argv:
        argv += ["--output", str(out)]
    return argv


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, tmp_path, out, capsys, monkeypatch):
    argv = _argv(case, tmp_path, out)
    if case.setup:
        case.setup(tmp_path, monkeypatch)
    before = snapshot(out)
    capsys.readouterr()

    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert case.problem in lines[0], lines[0]
    assert case.fix in lines[0], lines[0]
    # problem first, then ": " and the fix (the house style "X is Y: do Z")
    assert lines[0].index(case.problem) < lines[0].rindex(case.fix) or case.problem in case.fix

    after = snapshot(out)
    assert {k: v for k, v in after.items() if k.split("/")[0] == OLD_RUN} == before, "an existing run folder changed"
    new = {k.split("/")[0] for k in after} - {OLD_RUN}
    if case.run_starts:
        assert len(new) == 1, new
        report = json.loads((out / new.pop() / "report.json").read_text())
        assert report["status"].startswith("failed in ") and report["error"]
    else:
        assert not new, f"a run folder was left behind: {new}"
    leftovers = [p for p in out.rglob("*") if p.name.endswith((".tmp", ".parity"))]
    assert not leftovers
    if case.after:
        case.after(tmp_path)


def test_the_catalogue_is_big_enough_and_documented():
    doc = (ROOT / "docs" / "bad-input.md").read_text()
    items = [ln for ln in doc.splitlines() if ln.startswith("- ")]
    assert len(CASES) >= 25 and len(items) >= len(CASES)
    missing = [c.id for c in CASES if f"`{c.id}`" not in doc]
    assert not missing, f"cases not in docs/bad-input.md: {missing}"


# ---------------------------------------------------------------- corrupt images without --strict-data


def test_corrupt_image_is_skipped_with_a_warning_and_counted(tmp_path, capsys):
    """Without --strict-data an unreadable image is skipped: one warning line, counted in the data info
    the run records (report.json's data.skipped_images)."""
    from edgekit.data import DataConfig, load_data

    root = image_folder(tmp_path / "imgs", per_class=4)
    (root / "dog" / "broken.png").write_bytes(b"garbage")
    data = load_data(DataConfig(name=str(root), image_size=16))
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: skipping unreadable image") and "broken.png" in err[0]
    assert data.skipped == 1 and data.describe()["skipped_images"] == 1
    assert len(data.train) + len(data.val) == 8


def test_a_run_records_skipped_images(tmp_path, capsys):
    root = image_folder(tmp_path / "imgs", per_class=4)
    (root / "cat" / "broken.png").write_bytes(b"garbage")
    out = tmp_path / "artifacts"
    assert (
        main(["compress", "lenet", "--data", str(root), "--set", "data.image_size=28", *FAST[2:], "--output", str(out)])
        == 0
    )
    assert "warning: skipping unreadable image" in capsys.readouterr().err
    (run,) = list(out.iterdir())
    assert json.loads((run / "report.json").read_text())["data"]["skipped_images"] == 1


# ---------------------------------------------------------------- the console script, as users run it


@pytest.mark.parametrize("kind", ["recipe-python-tag", "checkpoint-pickle-runs-code"])
def test_console_refuses_code_execution_in_one_line(tmp_path, kind):
    marker = tmp_path / "pwned"
    if kind == "recipe-python-tag":
        argv = [
            "run",
            str(text_file(tmp_path / "r.yaml", f"model: !!python/object/apply:os.system ['touch {marker}']\n")),
        ]
    else:
        argv = evil_pickle(tmp_path, 2)
    out = tmp_path / "artifacts"
    proc = subprocess.run(
        [sys.executable, "-m", "edgekit", *argv, "--output", str(out)], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    assert not marker.exists() and not out.exists()
