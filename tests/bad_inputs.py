"""Builders of the bad inputs that tests/test_bad_input.py feeds the command line: files, folders,
recipes and patched environments, one small function per case, plus the Case record and helpers."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import SLICE

ROOT = Path(__file__).parent.parent
DATA = ["--set", f"data.root={SLICE}"]
FAST = [
    *DATA,
    "--epochs",
    "0",
    "--set",
    "export.parity_images=16",
    "--set",
    "validate.min_seconds=0.05",
    "--set",
    "validate.min_runs=5",
    "--set",
    "validate.warmup_s=0",
]
OLD_RUN = "20250101-000000-lenet5-0a0a"


# ---------------------------------------------------------------- helpers


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path (folders with no files show as '<dir>')."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "<dir>"
    return out


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


def other_model_state(tmp: Path) -> Path:
    """A state_dict of another architecture (a narrow MobileNetV3): no key layout of LeNet's."""
    import edgekit
    from edgekit.checkpoint import save_state_dict

    path = tmp / "other.pt"
    save_state_dict(edgekit.create_model("mobilenet_v3_small", num_classes=10, in_chans=1, width_mult=0.5), path)
    return path


def lenet_state(tmp: Path, name: str = "w.pt", num_classes: int = 10) -> Path:
    import edgekit
    from edgekit.checkpoint import save_state_dict

    path = tmp / name
    save_state_dict(edgekit.create_model("lenet5", num_classes=num_classes, in_chans=1), path)
    return path


def tiny_onnx(tmp: Path, name: str = "m.onnx") -> Path:
    """A valid one-conv ONNX classifier without edgekit metadata (onnx.helper: no export needed)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((16, 1, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input", "w"], ["c"]),
            helper.make_node("GlobalAveragePool", ["c"], ["g"]),
            helper.make_node("Flatten", ["g"], ["logits"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 16])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    model.ir_version = 8
    path = tmp / name
    onnx.save_model(model, str(path))
    return path


def truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def text_file(path: Path, text: str) -> Path:
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


def no_marker(tmp: Path) -> None:
    assert not (tmp / "pwned").exists(), "the refused payload ran"


def evil_pickle(tmp: Path, protocol: int) -> list[str]:
    path = tmp / f"evil{protocol}.pt"
    path.write_bytes(pickle.dumps(_Evil(tmp / "pwned"), protocol=protocol))
    return ["compress", "lenet", "--weights", str(path)]


def evil_torch_save(tmp: Path) -> list[str]:
    import torch

    path = tmp / "evil_zip.pt"
    torch.save({"fc2.weight": _Evil(tmp / "pwned")}, path)  # the zip format torch.save writes
    return ["compress", "lenet", "--weights", str(path)]


def full_disk(tmp: Path, mp: pytest.MonkeyPatch) -> None:
    """onnx.save_model writes half the file, then the disk is full."""
    import onnx

    def save_model(proto, path, *a, **k):
        Path(path).write_bytes(proto.SerializeToString()[:100])
        raise OSError(errno.ENOSPC, "No space left on device")

    mp.setattr(onnx, "save_model", save_model)


def export_left_nothing(tmp: Path) -> None:
    (run,) = [p for p in (tmp / "artifacts").iterdir() if p.name != OLD_RUN]
    names = {p.name for p in run.iterdir()}
    assert "baseline.pt" in names  # the finished load stage is kept
    assert not {n for n in names if n.endswith((".onnx", ".tmp", ".parity"))}, names
    assert json.loads((run / "report.json").read_text())["status"] == "failed in export"


def data_root_missing(tmp: Path) -> list[str]:
    (tmp / "nofiles").mkdir()
    return ["compress", "lenet", "--set", f"data.root={tmp / 'nofiles'}"]


def class_without_images(tmp: Path) -> list[str]:
    root = image_folder(tmp / "imgs", classes=("cat",))
    text_file(root / "dog" / "readme.txt", "no images here")
    return ["compress", "lenet", "--data", str(root)]


def corrupt_image_strict(tmp: Path) -> list[str]:
    root = image_folder(tmp / "imgs")
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    return ["compress", "lenet", "--data", str(root), "--strict-data"]


def all_images_corrupt(tmp: Path) -> list[str]:
    root = tmp / "imgs"
    for c in ("cat", "dog"):
        for j in range(3):
            text_file(root / c / f"{j}.jpg", "not a jpeg")
    return ["compress", "lenet", "--data", str(root)]


def classes_differ(tmp: Path) -> list[str]:
    image_folder(tmp / "imgs" / "train", classes=("cat", "dog"))
    image_folder(tmp / "imgs" / "val", classes=("cat", "cow"))
    return ["compress", "lenet", "--data", str(tmp / "imgs")]


def too_few_images(tmp: Path) -> list[str]:
    return ["compress", "lenet", "--data", str(image_folder(tmp / "imgs", per_class=1))]


def teacher_without_pruning(tmp: Path) -> list[str]:
    w = lenet_state(tmp)
    return ["compress", "lenet", "--set", "distill.teacher=lenet5", "--set", f"distill.teacher_weights={w}"]


def output_parent_is_file(tmp: Path) -> list[str]:
    text_file(tmp / "a_file", "x")
    return ["compress", "lenet", *DATA, "--output", str(tmp / "a_file" / "runs")]


def output_is_file(tmp: Path) -> list[str]:
    return ["compress", "lenet", *DATA, "--output", str(text_file(tmp / "runs.txt", "x"))]


def recipe_case(text: str) -> Callable[[Path], list[str]]:
    """`edgekit run` on a recipe with `text` ({t} becomes the test's tmp folder)."""
    return lambda tmp: ["run", str(text_file(tmp / "recipe.yaml", text.replace("{t}", str(tmp))))]


def raw_file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def not_a_state_dict(tmp: Path) -> list[str]:
    import torch

    torch.save([1, 2, 3], tmp / "l.pt")
    return ["compress", "lenet", "--weights", str(tmp / "l.pt")]


def empty_folder(tmp: Path) -> list[str]:
    (tmp / "empty").mkdir()
    return ["compress", "lenet", "--data", str(tmp / "empty")]


def no_evil_folder(tmp: Path) -> None:
    assert not (tmp / "evil").exists() and not list(tmp.glob("*evil*"))


H200 = {"tensorrt": "10.7.0", "gpu": "NVIDIA H200", "compute_capability": "9.0", "l4t": None}


def engine_file(t: Path, stamp: bool = True, **built) -> Path:
    """A model.int8.engine with a stamp from another machine (the bytes are never given to TensorRT)."""
    from edgekit.backends.tensorrt.stamp import make_stamp, write_stamp

    src = tiny_onnx(t)
    onnx_path = src.with_name("model.int8.onnx")
    src.rename(onnx_path)
    engine = raw_file(t / "model.int8.engine", b"engine bytes")
    if stamp:
        write_stamp(engine, make_stamp(engine, onnx_path, {**H200, **built}, {}))
    return engine


def fake_gpu_runtime(t: Path, monkeypatch) -> None:
    from edgekit.backends.tensorrt import runner

    monkeypatch.setattr(runner, "runtime_identity", lambda: dict(H200))


def no_tensorrt(t: Path, monkeypatch) -> None:
    from edgekit.backends import tensorrt

    monkeypatch.setattr(tensorrt, "status", lambda: (False, "ModuleNotFoundError: No module named 'tensorrt'"))
