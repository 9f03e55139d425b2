"""The bad-input catalogue (docs/bad-input.md), case by case through the command line.

Every case must end with exit code 2 and exactly one stderr line that names the problem and the fix,
with no traceback; run folders that already exist under --output stay byte-identical, and a case whose
error can be found before the run starts leaves no new run folder behind. The few cases that can only
fail once the run has started (the checkpoint does not fit the model built for the data, the disk
fills up during export) leave a run folder whose report names the failed stage, and no partial file.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from edgekit.cli import main

from conftest import SLICE

ROOT = Path(__file__).parent.parent
DATA = ["--set", f"data.root={SLICE}"]
FAST = [*DATA, "--epochs", "0", "--set", "export.parity_images=16", "--set", "validate.min_seconds=0.05",
        "--set", "validate.min_runs=5", "--set", "validate.warmup_s=0"]
OLD_RUN = "20250101-000000-lenet5-0a0a"


# ---------------------------------------------------------------- helpers

def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path (folders with no files show as '<dir>')."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "<dir>"
    return out


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


def _png(path: Path, colour=(200, 10, 10)) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), colour).save(path)
    return path


def image_folder(root: Path, classes=("cat", "dog"), per_class: int = 3) -> Path:
    for i, c in enumerate(classes):
        for j in range(per_class):
            _png(root / c / f"{j}.png", (40 * i, 20 * j, 90))
    return root


def _lenet_state(tmp: Path, name: str = "w.pt", num_classes: int = 10) -> Path:
    import edgekit
    from edgekit.checkpoint import save_state_dict

    path = tmp / name
    save_state_dict(edgekit.create_model("lenet5", num_classes=num_classes, in_chans=1), path)
    return path


def _tiny_onnx(tmp: Path, name: str = "m.onnx") -> Path:
    """A valid one-conv ONNX classifier without edgekit metadata (onnx.helper: no export needed)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((16, 1, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["c"]), helper.make_node("GlobalAveragePool", ["c"], ["g"]),
         helper.make_node("Flatten", ["g"], ["logits"])],
        "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 16])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp / name
    onnx.save_model(model, str(path))
    return path


def _truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


class _Evil:
    """A pickle whose loading would run a shell command: weights_only loading must refuse it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# ---------------------------------------------------------------- the catalogue

@dataclass
class Case:
    id: str
    argv: Callable[[Path], list[str]]  # tmp_path -> arguments (--output is added for compress/run)
    problem: str  # substring naming the problem
    fix: str  # substring naming the fix
    run_starts: bool = False  # found only once the run folder exists
    after: Callable[[Path], None] | None = None  # extra checks, given tmp_path
    setup: Callable[[Path, pytest.MonkeyPatch], None] | None = field(default=None)


def _no_marker(tmp: Path) -> None:
    assert not (tmp / "pwned").exists(), "the refused payload ran"


def _evil_pickle(tmp: Path, protocol: int) -> list[str]:
    path = tmp / f"evil{protocol}.pt"
    path.write_bytes(pickle.dumps(_Evil(tmp / "pwned"), protocol=protocol))
    return ["compress", "lenet", "--weights", str(path)]


def _evil_torch_save(tmp: Path) -> list[str]:
    import torch

    path = tmp / "evil_zip.pt"
    torch.save({"fc2.weight": _Evil(tmp / "pwned")}, path)  # the zip format torch.save writes
    return ["compress", "lenet", "--weights", str(path)]


def _full_disk(tmp: Path, mp: pytest.MonkeyPatch) -> None:
    """onnx.save_model writes half the file, then the disk is full."""
    import onnx

    def save_model(proto, path, *a, **k):
        Path(path).write_bytes(proto.SerializeToString()[:100])
        raise OSError(errno.ENOSPC, "No space left on device")

    mp.setattr(onnx, "save_model", save_model)


def _export_left_nothing(tmp: Path) -> None:
    (run,) = [p for p in (tmp / "artifacts").iterdir() if p.name != OLD_RUN]
    names = {p.name for p in run.iterdir()}
    assert "baseline.pt" in names  # the finished load stage is kept
    assert not {n for n in names if n.endswith((".onnx", ".tmp", ".parity"))}, names
    assert json.loads((run / "report.json").read_text())["status"] == "failed in export"


def _data_root_missing(tmp: Path) -> list[str]:
    (tmp / "nofiles").mkdir()
    return ["compress", "lenet", "--set", f"data.root={tmp / 'nofiles'}"]


def _class_without_images(tmp: Path) -> list[str]:
    root = image_folder(tmp / "imgs", classes=("cat",))
    _write(root / "dog" / "readme.txt", "no images here")
    return ["compress", "lenet", "--data", str(root)]


def _corrupt_image_strict(tmp: Path) -> list[str]:
    root = image_folder(tmp / "imgs")
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    return ["compress", "lenet", "--data", str(root), "--strict-data"]


def _all_images_corrupt(tmp: Path) -> list[str]:
    root = tmp / "imgs"
    for c in ("cat", "dog"):
        for j in range(3):
            _write(root / c / f"{j}.jpg", "not a jpeg")
    return ["compress", "lenet", "--data", str(root)]


def _classes_differ(tmp: Path) -> list[str]:
    image_folder(tmp / "imgs" / "train", classes=("cat", "dog"))
    image_folder(tmp / "imgs" / "val", classes=("cat", "cow"))
    return ["compress", "lenet", "--data", str(tmp / "imgs")]


def _too_few_images(tmp: Path) -> list[str]:
    return ["compress", "lenet", "--data", str(image_folder(tmp / "imgs", per_class=1))]


def _teacher_without_pruning(tmp: Path) -> list[str]:
    w = _lenet_state(tmp)
    return ["compress", "lenet", "--set", "distill.teacher=lenet5", "--set", f"distill.teacher_weights={w}"]


def _output_parent_is_file(tmp: Path) -> list[str]:
    _write(tmp / "a_file", "x")
    return ["compress", "lenet", *DATA, "--output", str(tmp / "a_file" / "runs")]


def _output_is_file(tmp: Path) -> list[str]:
    return ["compress", "lenet", *DATA, "--output", str(_write(tmp / "runs.txt", "x"))]


def _recipe(text: str) -> Callable[[Path], list[str]]:
    """`edgekit run` on a recipe with `text` ({t} becomes the test's tmp folder)."""
    return lambda tmp: ["run", str(_write(tmp / "recipe.yaml", text.replace("{t}", str(tmp))))]


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _not_a_state_dict(tmp: Path) -> list[str]:
    import torch

    torch.save([1, 2, 3], tmp / "l.pt")
    return ["compress", "lenet", "--weights", str(tmp / "l.pt")]


def _empty_folder(tmp: Path) -> list[str]:
    (tmp / "empty").mkdir()
    return ["compress", "lenet", "--data", str(tmp / "empty")]


def _no_evil_folder(tmp: Path) -> None:
    assert not (tmp / "evil").exists() and not list(tmp.glob("*evil*"))


H200 = {"tensorrt": "10.7.0", "gpu": "NVIDIA H200", "compute_capability": "9.0", "l4t": None}


def _engine(t: Path, stamp: bool = True, **built) -> Path:
    """A model.int8.engine with a stamp from another machine (the bytes are never given to TensorRT)."""
    from edgekit.backends.tensorrt.stamp import make_stamp, write_stamp

    src = _tiny_onnx(t)
    onnx_path = src.with_name("model.int8.onnx")
    src.rename(onnx_path)
    engine = _bytes(t / "model.int8.engine", b"engine bytes")
    if stamp:
        write_stamp(engine, make_stamp(engine, onnx_path, {**H200, **built}, {}))
    return engine


def _fake_gpu_runtime(t: Path, monkeypatch) -> None:
    from edgekit.backends.tensorrt import runner

    monkeypatch.setattr(runner, "runtime_identity", lambda: dict(H200))


def _no_tensorrt(t: Path, monkeypatch) -> None:
    from edgekit.backends import tensorrt

    monkeypatch.setattr(tensorrt, "status", lambda: (False, "ModuleNotFoundError: No module named 'tensorrt'"))


CASES = [
    # command line values
    Case("unknown-model", lambda t: ["compress", "mobilenet_v4"], "unknown model 'mobilenet_v4'", "did you mean mobilenet_v3"),
    Case("prune-negative", lambda t: ["compress", "lenet", "--prune", "-0.1"], "is outside [0, 1)", "give the fraction of channels"),
    Case("prune-one", lambda t: ["compress", "lenet", "--prune", "1"], "is outside [0, 1)", "e.g. 0.3"),
    Case("prune-above-one", lambda t: ["compress", "lenet", "--prune", "30"], "--prune 30.0 is outside [0, 1)", "give the fraction"),
    Case("prune-not-a-number", lambda t: ["compress", "lenet", "--prune", "abc"], "--prune 'abc' is not a number", "give a fraction in [0, 1)"),
    Case("prune-nan", lambda t: ["compress", "lenet", "--prune", "nan"], "is outside [0, 1)", "give the fraction"),
    Case("set-not-key-value", lambda t: ["compress", "lenet", "--set", "prune.ratio"], "is not KEY=VALUE", "write e.g. --set"),
    # recipes
    Case("recipe-missing", lambda t: ["run", str(t / "nope.yaml")], "does not exist", "give a path to a .yaml recipe"),
    Case("recipe-unknown-key", _recipe("model:\n  name: lenet\n  colour: red\n"), "model: unknown key 'colour'", "allowed keys: name, weights"),
    Case("recipe-unknown-section", _recipe("model:\n  name: lenet\npruning:\n  ratio: 0.3\n"), "unknown key 'pruning'", "allowed keys: model, data"),
    Case("recipe-wrong-type", _recipe("model:\n  name: lenet\nprune:\n  ratio: high\n"), "prune.ratio = 'high' is not allowed", "expected float"),
    Case("recipe-out-of-range", _recipe("model:\n  name: lenet\nprune:\n  ratio: 1.5\n"), "prune.ratio = 1.5 is out of range", "allowed [0.0, 1.0)"),
    Case("recipe-section-not-mapping", _recipe("model: lenet\n"), "model must be a mapping", "write it as `key: value` lines"),
    Case("recipe-not-mapping", _recipe("- model\n- prune\n"), "a recipe must be a mapping of sections", "(model, data, train, ...)"),
    Case("recipe-missing-model-name", _recipe("prune:\n  ratio: 0.3\n"), "required key model.name is missing", "--set model.name=NAME"),
    Case("recipe-invalid-yaml", _recipe("model:\n  name: lenet\nprune: [0.3\nquantize:\n  enabled: true\n"), "invalid YAML at line 4", "fix the syntax there"),
    Case("recipe-python-tag", _recipe("model: !!python/object/apply:os.system ['touch {t}/pwned']\n"), "YAML tag refused at line 1", "remove the tag",
         after=_no_marker),
    Case("run-name-escapes", lambda t: ["compress", "lenet", *DATA, "--set", "run.name=../evil"], "run.name '../evil' must be a plain folder name", "remove slashes", after=_no_evil_folder),
    Case("run-name-absolute", lambda t: ["compress", "lenet", *DATA, "--set", f"run.name={t}/evil"], "must be a plain folder name", "remove slashes", after=_no_evil_folder),
    # stage order
    Case("order-qat-without-int8", lambda t: ["compress", "lenet", "--qat", "on"], "quantize.qat is on but quantize.enabled is false", "add --int8"),
    Case("order-qat-without-accuracy-check", lambda t: ["compress", "lenet", "--int8", "--qat", "on", "--set", "quantize.max_drop=null"],
         "QAT runs only inside the int8 accuracy check", "set --max-drop"),
    Case("order-teacher-without-pruning", _teacher_without_pruning, "distill.teacher is set but nothing is pruned", "set --prune RATIO"),
    Case("teacher-weights-missing", lambda t: ["compress", "lenet", "--prune", "0.3", "--set", "distill.teacher=lenet5", "--set", f"distill.teacher_weights={t}/nope.pt"],
         "teacher checkpoint", "check distill.teacher_weights"),
    # data
    Case("data-folder-missing", lambda t: ["compress", "lenet", "--data", str(t / "no_such_folder")], "does not exist", "give an existing folder with one sub-folder per class"),
    Case("data-unknown-name", lambda t: ["compress", "lenet", "--data", "imagenet"], "unknown data set 'imagenet'", "use one of fashion_mnist"),
    Case("data-folder-empty", _empty_folder, "has no class sub-folders", "put images in"),
    Case("data-class-without-images", _class_without_images, "has no images", "add images or remove the folder"),
    Case("data-corrupt-image-strict", _corrupt_image_strict, "broken.png is unreadable", "drop --strict-data"),
    Case("data-all-images-unreadable", _all_images_corrupt, "none of the", "replace them with valid image files"),
    Case("data-classes-differ", _classes_differ, "classes differ between", "use the same class folders in both"),
    Case("data-too-few-images", _too_few_images, "too few images to split off a validation set", "add images or give train/ and val/"),
    Case("data-fashion-mnist-files-missing", _data_root_missing, "lacks Fashion-MNIST files", "put the four *-ubyte.gz files there"),
    # checkpoints
    Case("checkpoint-missing", lambda t: ["compress", "lenet", "--weights", str(t / "nope.pt")], "does not exist", "check the --weights path"),
    Case("checkpoint-truncated", lambda t: ["compress", "lenet", "--weights", str(_truncate(_lenet_state(t)))], "is not a readable PyTorch checkpoint (damaged or truncated archive", "torch.save(model.state_dict(), path)"),
    Case("checkpoint-random-bytes", lambda t: ["compress", "lenet", "--weights", str(_bytes(t / "r.pt", b"\x00" + os.urandom(4096)))],
         "is not a readable PyTorch checkpoint (neither a torch.save archive nor a pickle", "give a file written by torch.save"),
    Case("checkpoint-text-file", lambda t: ["compress", "lenet", "--weights", str(_write(t / "w.pt", "hello\nworld\n"))], "it starts with b'hell'", "give a file written by torch.save"),
    Case("checkpoint-not-a-state-dict", _not_a_state_dict,
         "holds no state_dict", "save it with torch.save(model.state_dict(), path)"),
    Case("checkpoint-pickle-runs-code", lambda t: _evil_pickle(t, 2), "needs code execution to load and was refused", "save a plain state_dict", after=_no_marker),
    Case("checkpoint-pickle-protocol-5", lambda t: _evil_pickle(t, 5), "is not a readable PyTorch checkpoint", "give a file written by torch.save", after=_no_marker),
    Case("checkpoint-torch-save-runs-code", _evil_torch_save, "needs code execution to load and was refused", "save a plain state_dict", after=_no_marker),
    Case("checkpoint-shape-mismatch", lambda t: ["compress", "lenet", *FAST, "--weights", str(_lenet_state(t, num_classes=5))],
         "does not match model lenet5", "give weights saved from the same architecture", run_starts=True),
    # ONNX files for eval and bench
    Case("eval-onnx-truncated", lambda t: ["eval", str(_truncate(_tiny_onnx(t))), "--data", str(SLICE)], "is not a loadable ONNX model", "give a valid .onnx file"),
    Case("eval-not-onnx", lambda t: ["eval", str(_write(t / "m.onnx", "hello")), "--data", str(SLICE)], "is not a loadable ONNX model", "give a valid .onnx file"),
    Case("eval-onnx-without-metadata", lambda t: ["eval", str(_tiny_onnx(t)), "--data", str(SLICE)], "has no edgekit normalization metadata", "evaluate a model exported by edgekit"),
    Case("bench-onnx-truncated", lambda t: ["bench", str(_truncate(_tiny_onnx(t))), "--seconds", "0.05"], "is not a loadable ONNX model", "give a valid .onnx file"),
    Case("bench-not-onnx", lambda t: ["bench", str(_lenet_state(t)), "--seconds", "0.05"], "is not a loadable ONNX model", "give a valid .onnx file"),
    # TensorRT engines (the runtime is faked as an H200 with TensorRT 10.7: the stamp check comes before TensorRT)
    Case("engine-other-tensorrt", lambda t: ["bench", str(_engine(t, tensorrt="10.3.0")), "--backend", "tensorrt"],
         "was built for another runtime (TensorRT 10.3.0 (built) vs 10.7.0 (here))", "rebuild it from model.int8.onnx", setup=_fake_gpu_runtime),
    Case("engine-other-gpu", lambda t: ["bench", str(_engine(t, gpu="Orin (nvgpu)", compute_capability="8.7")), "--backend", "tensorrt"],
         "GPU Orin (nvgpu) (built) vs NVIDIA H200 (here)", "on this machine with `edgekit build model.int8.onnx`", setup=_fake_gpu_runtime),
    Case("engine-without-stamp", lambda t: ["bench", str(_engine(t, stamp=False)), "--backend", "tensorrt"],
         "has no stamp model.int8.engine.json", "rebuild it from its ONNX file", setup=_fake_gpu_runtime),
    Case("engine-without-tensorrt", lambda t: ["build", str(_tiny_onnx(t))], "tensorrt: unavailable (", "install TensorRT's Python package", setup=_no_tensorrt),
    # output folder and disk
    Case("output-parent-is-a-file", _output_parent_is_file, "is not writable", "choose another with --output"),
    Case("output-is-a-file", _output_is_file, "is not writable", "choose another with --output"),
    Case("disk-full-during-export", lambda t: ["compress", "lenet", *FAST], "no space left on the device while writing", "free disk space",
         run_starts=True, after=_export_left_nothing, setup=_full_disk),
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
    assert main(["compress", "lenet", "--data", str(root), "--set", "data.image_size=28", *FAST[2:], "--output", str(out)]) == 0
    assert "warning: skipping unreadable image" in capsys.readouterr().err
    (run,) = list(out.iterdir())
    assert json.loads((run / "report.json").read_text())["data"]["skipped_images"] == 1


# ---------------------------------------------------------------- the console script, as users run it

@pytest.mark.parametrize("kind", ["recipe-python-tag", "checkpoint-pickle-runs-code"])
def test_console_refuses_code_execution_in_one_line(tmp_path, kind):
    marker = tmp_path / "pwned"
    if kind == "recipe-python-tag":
        argv = ["run", str(_write(tmp_path / "r.yaml", f"model: !!python/object/apply:os.system ['touch {marker}']\n"))]
    else:
        argv = _evil_pickle(tmp_path, 2)
    out = tmp_path / "artifacts"
    proc = subprocess.run([sys.executable, "-m", "edgekit", *argv, "--output", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    assert not marker.exists() and not out.exists()
