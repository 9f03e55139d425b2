"""edgekit's Python API: the calls the command line is built on, in the field's habits (a model object
and data in, a model or a file out, configuration as plain data).

    import edgekit
    run = edgekit.compress(model, train=(images, labels), prune=0.3, int8=True,
                           settings={"distill.epochs": 2})
    run.run_dir, run.report["results"], run.ship

Each stage is also callable on its own: `prune`, `distill_student`, `export_onnx`, `quantize_onnx`, `evaluate`,
`benchmark`. Progress goes to the `edgekit` logger (silence it with
`logging.getLogger("edgekit").setLevel(logging.WARNING)`). Bad input raises `EdgekitError` with one line
naming the problem and the fix."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import edgekit.pipeline as pipeline
from edgekit.artifact import Artifact
from edgekit.errors import EdgekitError
from edgekit.logs import show_on_console
from edgekit.recipe import Recipe, from_dict
from edgekit.report import ship_file
from edgekit.sharding import announced_folder
from edgekit.target import PLATFORMS, TargetConfig
from edgekit.zoo.user import UserModel, user_model_name

# The public names are edgekit.API (edgekit/__init__.py), which loads this module on first use.


@dataclass
class Run:
    """A finished run: its folder, report.json as a dict, and the file to ship (None when nothing passed)."""

    run_dir: Path
    report: dict[str, Any]
    ship: Path | None
    artifact: Artifact

    @classmethod
    def of(cls, art: Artifact) -> Run:
        report = json.loads((art.run_dir / "report.json").read_text())
        return cls(art.run_dir, report, _ship_path(art), art)

    @classmethod
    def of_folder(cls, run_dir: Path) -> Run:
        """Another rank's view of rank 0's finished run: the folder and, where this machine sees it (one
        node, or a shared file system), its report and file to ship; no models in memory."""
        try:
            report = json.loads((run_dir / "report.json").read_text())
        except (OSError, ValueError):
            report = {}
        return cls(run_dir, report, ship_file(report, run_dir), Artifact(run_dir))


def _ship_path(art: Artifact) -> Path | None:
    chosen = art.info.ship
    if not chosen:
        return None
    path = ship_file({"ship": chosen, "results": art.info.results}, art.run_dir)
    if path is not None:
        return path
    entry = next((e for e in art.entries.values() if e.name == chosen["artifact"]), None)
    return entry.path if entry is not None else None


def run_recipe(recipe: Recipe, *, model: nn.Module | None = None, data: Any = None) -> Run:
    """Run a Recipe (what `edgekit run` and `edgekit compress` do), optionally with a module and a Dataset
    given from Python in place of the recipe's model and data.

    Under torchrun every process calls it: rank 0 runs the pipeline and writes the run folder, the other
    ranks train inside its fit calls and take their share of its evaluations, and each returns the Run
    (on ranks other than 0 read from the folder: Run.of_folder). A failure raises on rank 0; the other
    ranks then raise EdgekitError too."""
    show_on_console()
    art = pipeline.lead(lambda: pipeline.run(recipe, model=model, data=data))
    if art is not None:
        return Run.of(art)
    announced = announced_folder()
    if announced is None or not announced[1]:
        where = f" (its run folder: {announced[0]})" if announced else ""
        raise EdgekitError(f"rank 0's run did not finish{where}: rank 0 printed the error")
    return Run.of_folder(Path(announced[0]))


def compress(
    model: nn.Module | str,
    train: Any = None,
    val: Any = None,
    *,
    prune: float | None = None,
    int8: bool = False,
    output: str | Path = "artifacts",
    settings: dict[str, Any] | None = None,
) -> Run:
    """Prune, distill, export, quantize and validate `model`, as `edgekit compress` does.

    `model`: an nn.Module (its forward must return (N, classes) logits; a classifier with another class
    count is re-initialised and fine-tuned), or a zoo name (`edgekit models`; also `timm:NAME`,
    `torchvision:NAME`). `train` / `val`: a torch Dataset or DataLoader of (image C x H x W, int label), a
    pair (images, labels) of arrays, or an image folder path (`train` only; val is then split off or read
    from its val/ subfolder); None uses the recipe's data (Fashion-MNIST). Float images are fed to the
    model as they are (no renormalising); uint8 images are pixels, normalized with the training split's
    mean/std. `settings`: recipe values by dotted key, as `--set` (e.g. {"distill.epochs": 2})."""
    overrides: dict[str, Any] = {"run.output": str(output), **(settings or {})}
    if prune is not None:
        overrides["prune.ratio"] = prune
    if int8:
        overrides["quantize.enabled"] = True
    module = None
    if isinstance(model, nn.Module):
        module = model
        overrides["model.name"] = user_model_name(model)
    elif isinstance(model, str):
        overrides["model.name"] = model
    else:
        raise EdgekitError(
            f"model is a {type(model).__name__}: give an nn.Module or a zoo model name (see `edgekit models`)"
        )
    data = None
    if isinstance(train, (str, Path)):
        if val is not None:
            raise EdgekitError(
                "train is a folder path: give val as its val/ subfolder (or leave val out to split one off)"
            )
        overrides["data.name"] = str(train)
    elif train is not None:
        from edgekit.data.from_user import dataset_from

        seed = int(overrides.get("data.seed", 0))
        data = dataset_from(train, val, seed=seed)
        overrides["data.name"] = pipeline.PYTHON_DATA
    elif val is not None:
        raise EdgekitError("val is given without train: give both (or a train folder path)")
    recipe = from_dict({}, "edgekit.compress", overrides)
    return run_recipe(recipe, model=module, data=data)


def _input_size(model: nn.Module, input_size: Sequence[int] | None, example: torch.Tensor | None) -> tuple[int, ...]:
    if example is not None:
        return tuple(example.shape[1:])
    if input_size is None:
        raise EdgekitError("give input_size=(C, H, W) or an example batch: pruning traces the model on that input")
    return tuple(input_size)


def prune(
    model: nn.Module,
    ratio: float,
    input_size: Sequence[int] | None = None,
    *,
    example: torch.Tensor | None = None,
    num_classes: int | None = None,
    ignored_layers: list[nn.Module] | None = None,
    **settings: Any,
) -> nn.Module:
    """A pruned copy of `model` (torch-pruning): `ratio` of every prunable layer's channels removed. The
    classifier (the last Linear / Conv2d with `num_classes` outputs; by default the model's output size)
    keeps its outputs; `ignored_layers` replaces that choice. `settings`: other `prune` recipe keys
    (importance, round_to, scope, ...)."""
    from edgekit.config import build
    from edgekit.stages import prune as prune_stage

    size = _input_size(model, input_size, example)
    if num_classes is None:
        with torch.no_grad():
            num_classes = int(model.eval()(torch.zeros(1, *size)).shape[-1])
    cfg = build(prune_stage.Config, {"ratio": ratio, **settings}, "edgekit.prune")
    contracted = hasattr(model, "pruning_ignored_layers") and ignored_layers is None
    wrapped = model if contracted else UserModel(model, num_classes, ignored_layers)
    pruned = prune_stage.prune_model(wrapped, cfg, size)
    return pruned if contracted else pruned.net  # type: ignore[return-value]


def distill_student(
    student: nn.Module,
    teacher: nn.Module | None,
    train: Any,
    *,
    epochs: int = 3,
    temperature: float = 4.0,
    alpha: float = 0.7,
    **settings: Any,
) -> nn.Module:
    """A copy of `student` trained on `train` (as for compress) with KD from `teacher` (None: cross-entropy
    fine-tuning). `settings`: other `distill` recipe keys (lr, batch_size, device, ...)."""
    import copy

    from edgekit.config import build
    from edgekit.data.from_user import dataset_from
    from edgekit.stages import distill as distill_stage
    from edgekit.training import fit

    cfg = build(
        distill_stage.Config,
        {"epochs": epochs, "temperature": temperature, "alpha": alpha, "enabled": teacher is not None, **settings},
        "edgekit.distill",
    )
    data = dataset_from(train, None, val_fraction=0.0) if not hasattr(train, "train") else train
    # In the wrapper a user's forward gets the standard memory layout (see UserModel.forward).
    model = UserModel(copy.deepcopy(student), data.num_classes, ignored_layers=[])
    wrapped_teacher = UserModel(teacher.eval(), data.num_classes, ignored_layers=[]) if teacher is not None else None
    objective = distill_stage.objective_for(
        model, wrapped_teacher, cfg, data.input_size, len(data.train), data.train.images
    )
    fit(model, data, cfg, objective, "distill" if teacher is not None else "finetune", extra=objective.adapter)
    return model.net.eval()


def export_onnx(
    model: nn.Module, path: str | Path, input_size: Sequence[int], *, opset: int = 17, simplify: bool = True
) -> Path:
    """One self-contained ONNX file (input `input`, output `logits`, dynamic batch), parity-checked
    against PyTorch on random inputs."""
    from edgekit.export import export_checked

    path = Path(path)
    images = np.random.default_rng(0).standard_normal((8, *input_size)).astype(np.float32)
    meta = {"source_artifact": type(model).__name__, "input_size": json.dumps(list(input_size))}
    export_checked(model, path, tuple(input_size), images, meta, opset=opset, simplify=simplify)
    return path


def quantize_onnx(
    onnx_path: str | Path,
    calibration: np.ndarray | torch.Tensor,
    output: str | Path | None = None,
    *,
    target: str = "cpu",
    calibration_method: str = "minmax",
    per_channel: bool = True,
) -> Path:
    """An int8 Q/DQ copy of an ONNX file, calibrated on `calibration` (N x C x H x W, as the model takes
    it), in the form `target` runs fast: cpu / openvino (U8 activations) or tensorrt / jetson (symmetric S8)."""
    from edgekit.quant.ptq import PtqSettings
    from edgekit.stages.quantize import quantize_onnx as quantize_file

    src = Path(onnx_path)
    if not src.is_file():
        raise EdgekitError(f"ONNX file {src} does not exist: check the path")
    if target not in PLATFORMS:
        raise EdgekitError(f"target {target!r} is not one of {', '.join(PLATFORMS)}")
    if calibration_method not in ("minmax", "entropy", "percentile"):
        raise EdgekitError(f"calibration_method {calibration_method!r} is not one of minmax, entropy, percentile")
    images = calibration.numpy() if isinstance(calibration, torch.Tensor) else np.asarray(calibration)
    dst = Path(output) if output is not None else src.with_name(src.stem + ".int8.onnx")
    form = TargetConfig(target).int8_form  # type: ignore[arg-type]
    ptq = PtqSettings(calibration_method, per_channel=per_channel, target=form)  # type: ignore[arg-type]
    quantize_file(src, dst, np.ascontiguousarray(images, dtype=np.float32), ptq)
    return dst


def _runner(model: nn.Module | str | Path, threads: int):
    from edgekit.backends.ort import OrtRunner
    from edgekit.backends.torch_cpu import TorchRunner

    return TorchRunner(model, threads) if isinstance(model, nn.Module) else OrtRunner(Path(model), threads)


def evaluate(model: nn.Module | str | Path, images: Any, labels: Any, *, threads: int = 1) -> dict[str, float]:
    """Top-1 / top-5 of a module or an ONNX file on (images as the model takes them, labels)."""
    from edgekit.backends import evaluate as evaluate_runner
    from edgekit.backends.torch_cpu import torch_threads

    x = np.ascontiguousarray(images.numpy() if isinstance(images, torch.Tensor) else images, dtype=np.float32)
    y = labels.numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    with torch_threads(threads):
        return evaluate_runner(_runner(model, threads), x, y)


def benchmark(
    model: nn.Module | str | Path, input_size: Sequence[int], *, batch: int = 32, threads: int = 1, seconds: float = 2.0
) -> dict[str, Any]:
    """Measured latency at batch 1 (p50/p90/p99 ms) and throughput at `batch` (images/s) on this CPU."""
    from edgekit.backends import measure_latency, measure_throughput
    from edgekit.backends.torch_cpu import torch_threads

    x = np.random.default_rng(0).standard_normal((batch, *input_size)).astype(np.float32)
    with torch_threads(threads):
        runner = _runner(model, threads)
        latency = measure_latency(runner, x[:1], min_s=seconds)
        throughput = measure_throughput(runner, x, batch, min_s=seconds)
    return {"latency_ms": latency, "throughput_ips": throughput, "batch": batch, "threads": threads}
