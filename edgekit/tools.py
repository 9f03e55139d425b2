"""The stand-alone commands `edgekit bench`, `edgekit build` and `edgekit eval` on any ONNX file."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from edgekit.backends import evaluate, measure_latency, measure_throughput
from edgekit.backends.ort import OrtRunner
from edgekit.envinfo import usable_cores
from edgekit.errors import EdgekitError

log = logging.getLogger(__name__)


def _threads(threads: int) -> int:
    return threads or usable_cores()


def _static_shape(runner: OrtRunner) -> tuple[int, ...]:
    shape = runner.input_shape[1:]
    if len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
        raise EdgekitError(
            f"{runner.path}: input shape {runner.input_shape} is not (batch, C, H, W) with fixed C, H, W: export the "
            "model with a static image size"
        )
    return tuple(shape)


def bench_onnx(path: Path, threads: int = 0, batch: int = 32, seconds: float = 2.0, provider: str = "cpu") -> dict:
    runner = OrtRunner(path, _threads(threads), provider)
    shape = _static_shape(runner)
    fixed_batch = runner.input_shape[0]
    if isinstance(fixed_batch, int) and fixed_batch not in (1, batch):
        batch = fixed_batch
    inputs = np.random.default_rng(0).standard_normal((batch, *shape), dtype=np.float32)
    latency = (
        measure_latency(runner, inputs, min_s=seconds) if not isinstance(fixed_batch, int) or fixed_batch == 1 else None
    )
    return {
        "file": str(path),
        "backend": runner.backend,
        "threads": runner.threads,
        "latency_ms": {k: v for k, v in (latency or {}).items() if k != "runs"},
        "runs": (latency or {}).get("runs", 0),
        "batch": batch,
        "throughput_ips": measure_throughput(runner, inputs, batch, min_s=seconds),
    }


def engine_target(onnx_path: Path, engine_path: Path | None, identity: dict) -> Path:
    """Where to build: an engine is only ever replaced by one for the same runtime. An engine at the
    default path built for another TensorRT or GPU is kept and this runtime's goes beside it under a
    device-specific name; an explicit --engine path holding another runtime's engine is refused."""
    from edgekit.backends.tensorrt.options import device_engine_path, engine_path_for
    from edgekit.backends.tensorrt.stamp import differences, read_stamp

    target = Path(engine_path) if engine_path else engine_path_for(Path(onnx_path))
    if not target.exists():
        return target
    try:
        diff = differences(read_stamp(target), identity)
    except EdgekitError:
        diff = ["no readable stamp"]
    if not diff:
        return target
    if engine_path:
        raise EdgekitError(
            f"{target} holds an engine for another runtime ({'; '.join(diff)}) and is kept: give another --engine path"
        )
    return device_engine_path(Path(onnx_path), identity)


def build_tensorrt(
    onnx_path: Path, options, engine_path: Path | None = None, rebuild: bool = True
) -> tuple[Path, dict]:
    """Build (or, with rebuild=False, reuse when its stamp matches this runtime and the ONNX file) the
    engine of `onnx_path`; returns the engine path and its stamp."""
    from edgekit.backends.tensorrt.builder import build_engine
    from edgekit.backends.tensorrt.stamp import check_engine, read_stamp, runtime_identity

    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise EdgekitError(f"ONNX file {onnx_path} does not exist: check the path")
    identity = runtime_identity()
    engine = engine_target(onnx_path, engine_path, identity)
    if not rebuild and engine.is_file():
        try:
            stamp = check_engine(engine, identity, onnx_path)
            if stamp.get("options") == options.stamped():
                log.info(f"reusing {engine} (its stamp matches this runtime, the ONNX file and the options)")
                return engine, stamp
        except EdgekitError as exc:
            log.info(f"rebuilding {engine.name}: {exc}")
    log.info(f"building {engine} from {onnx_path.name} with TensorRT {identity['tensorrt']} on {identity['gpu']}")
    build_engine(onnx_path, engine, options, identity)
    return engine, read_stamp(engine)


def bench_tensorrt(path: Path, options, batches: list[int], seconds: float = 3.0, cuda_graph: bool = False) -> dict:
    """trtexec-style figures of an engine (or of the engine built from an ONNX file, reused when its
    stamp still matches) at several batch sizes."""
    from edgekit.backends.tensorrt.runner import TrtRunner

    path = Path(path)
    if path.suffix == ".onnx":
        engine, _ = build_tensorrt(path, options, rebuild=False)
        onnx_path = path
    else:
        engine, onnx_path = path, None
    runner = TrtRunner(engine, onnx_path)
    too_big = [b for b in batches if not runner.min_batch <= b <= runner.max_batch]
    if too_big:
        raise EdgekitError(
            f"batch sizes {too_big} are outside the engine's profile [{runner.min_batch}, {runner.max_batch}]: "
            "rebuild with --min-batch/--max-batch covering them"
        )
    return {
        "file": str(path),
        "engine": str(engine),
        "backend": "tensorrt",
        "stamp": runner.stamp,
        "results": [runner.profile(b, min_s=seconds, cuda_graph=cuda_graph) for b in batches],
    }


def eval_onnx(path: Path, data_name: str, threads: int = 0) -> dict:
    from edgekit.data import DataConfig, load_data
    from edgekit.data.transforms import normalize

    runner = OrtRunner(path, _threads(threads))
    meta = runner.metadata()
    if "normalization" not in meta:
        raise EdgekitError(f"{path} has no edgekit normalization metadata: evaluate a model exported by edgekit")
    norm = json.loads(meta["normalization"])
    shape = _static_shape(runner)
    data = load_data(DataConfig(name=data_name, image_size=shape[-1]))
    if tuple(data.input_size) != shape:
        raise EdgekitError(
            f"{path} expects inputs {shape} but {data_name} gives {tuple(data.input_size)}: evaluate on the data the "
            "model was trained for"
        )
    classes = json.loads(meta.get("class_names", "[]"))
    if classes and len(classes) != data.num_classes:
        raise EdgekitError(
            f"{path} has {len(classes)} classes but {data_name} has {data.num_classes}: evaluate on the data the "
            "model was trained for"
        )
    images = normalize(data.val.images, norm["mean"], norm["std"]).numpy()
    acc = evaluate(runner, images, data.val.labels.numpy(), label="eval")
    return {"file": str(path), "data": data.name, "images": len(images), **acc}


def model_rows(pattern: str | None = None) -> list[dict]:
    """The zoo's models matching `pattern`: name, family, params, MACs at the default input size (convolutions
    and linear layers, as papers count them), the published MACs where known (None otherwise), input size
    (C, H, W) and paper."""
    from edgekit.metrics import count_macs, count_params
    from edgekit.zoo import MODELS, create_model

    names = MODELS.names(pattern)
    if not names:
        raise EdgekitError(f"no model matches {pattern!r}: run `edgekit models` to see all")
    rows = []
    for name in names:
        spec = MODELS.get(name)
        with torch.device("meta"):  # shapes only: counting 40+ models takes seconds, not minutes
            model = create_model(name, num_classes=spec.num_classes, in_chans=spec.input_size[0])
            params, macs = count_params(model), count_macs(model, spec.input_size)
        rows.append(
            {"name": name, "family": spec.family, "params": params, "macs": macs,
             "published_macs": None if spec.published_macs is None else round(spec.published_macs * 1e6),
             "input_size": list(spec.input_size), "paper": spec.paper}
        )  # fmt: skip
    return rows


def model_aliases() -> dict[str, str]:
    from edgekit.zoo import MODELS

    return dict(sorted(MODELS.aliases().items()))


def model_table(pattern: str | None = None) -> str:
    head = ("name", "family", "params", "MACs", "paper MACs", "input", "paper")
    rows = [head] + [
        (r["name"], r["family"], f"{r['params'] / 1e6:.2f}M", f"{r['macs'] / 1e6:.1f}M",
         "-" if r["published_macs"] is None else f"{r['published_macs'] / 1e6:g}M",
         "x".join(map(str, r["input_size"])), r["paper"])
        for r in model_rows(pattern)
    ]  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.append("\naliases: " + ", ".join(f"{a} -> {t}" for a, t in model_aliases().items()))
    return "\n".join(lines)
