"""export: ONNX (opset >= 17, dynamic batch, input `input`, output `logits`), simplified with onnxsim,
checked with onnx.checker, metadata stamped in, and a parity check against PyTorch that fails the stage.

The unpruned baseline is exported too (baseline.onnx), so the report compares like with like in ONNX
Runtime. Each file is self-contained (no external .onnx.data) because that is what users copy."""
from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from edgekit import __version__
from edgekit.artifact import Artifact, ModelEntry
from edgekit.backends.ort import OrtRunner
from edgekit.config import ranged
from edgekit.data.transforms import normalize
from edgekit.errors import EdgekitError
from edgekit.fileio import atomic_path

NAME = "export"
SECTION = "export"


@dataclass
class Config:
    """`opset`: ONNX opset (17-21). `simplify`: run onnxsim. Parity: on `parity_images` validation
    images the ONNX logits must stay within `parity_atol` of PyTorch's and agree on top-1 for at
    least `parity_min_agreement` of them, or the stage fails. `fp16`: also write model.fp16.onnx
    (fp16 weights and activations, float32 input and output; meant for GPU targets: ONNX Runtime's CPU
    provider runs it, with casts around the many ops it has no fp16 kernel for, slowly)."""

    opset: int = ranged(17, 17, 21)
    simplify: bool = True
    parity_images: int = ranged(256, 1, 100_000)
    parity_atol: float = ranged(1e-3, 0.0, 10.0)
    parity_min_agreement: float = ranged(0.99, 0.0, 1.0)
    fp16: bool = False


def skip(art, cfg: Config, ctx) -> str | None:
    return None


def to_onnx(model: torch.nn.Module, input_size, opset: int, simplify: bool):
    """Export with the TorchScript-based exporter: it writes the requested opset into one file
    (torch 2.13's default dynamo exporter writes a higher opset and external data by default)."""
    import onnx

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(), (torch.zeros(2, *input_size),), buf, dynamo=False, opset_version=opset,
            input_names=["input"], output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )
    proto = onnx.load_from_string(buf.getvalue())
    if simplify:
        import onnxsim

        proto, ok = onnxsim.simplify(proto)
        if not ok:
            raise EdgekitError("onnxsim could not validate the simplified model: rerun with export.simplify: false")
    onnx.checker.check_model(proto, full_check=True)
    return proto


def stamp(proto, info: dict, source: str) -> None:
    meta = {
        "edgekit_version": __version__,
        "model": info["model"],
        "source_artifact": source,
        "class_names": json.dumps(info["classes"]),
        "input_size": json.dumps(info["input_size"]),
        "normalization": json.dumps({"mean": info["mean"], "std": info["std"], "scale": "1/255"}),
    }
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def save_onnx(proto, path: Path) -> None:
    import onnx

    with atomic_path(path) as tmp:
        onnx.save_model(proto, str(tmp))


def parity(model: torch.nn.Module, path: Path, images: np.ndarray) -> dict:
    with torch.no_grad():
        ref = model.eval()(torch.from_numpy(images)).numpy()
    got = OrtRunner(path, threads=1).run(images)
    return {
        "max_abs_diff": float(np.abs(ref - got).max()),
        "top1_agreement": float((ref.argmax(1) == got.argmax(1)).mean()),
    }


def export_entry(art: Artifact, source: ModelEntry, filename: str, cfg: Config, ctx, images: np.ndarray) -> dict:
    proto = to_onnx(source.module, ctx.data.input_size, cfg.opset, cfg.simplify)
    stamp(proto, art.info, source.name)
    path = ctx.run_dir / filename
    tmp_check = ctx.run_dir / f".{filename}.parity"
    try:  # only a checked file becomes `path`; on any failure the unchecked one is removed
        save_onnx(proto, tmp_check)
        check = parity(source.module, tmp_check, images)
        if check["max_abs_diff"] > cfg.parity_atol or check["top1_agreement"] < cfg.parity_min_agreement:
            raise EdgekitError(
                f"ONNX parity check failed for {source.name}: max |diff| {check['max_abs_diff']:.2e} (allowed {cfg.parity_atol}), "
                f"top-1 agreement {check['top1_agreement']:.3f} (needed {cfg.parity_min_agreement}): try another export.opset or export.simplify: false"
            )
        tmp_check.replace(path)
    finally:
        tmp_check.unlink(missing_ok=True)
    art.add(ModelEntry(filename, "onnx", "fp32", source.params, source.macs, path))
    return {filename: {"source": source.name, "opset": cfg.opset, **check}}


def run(art: Artifact, cfg: Config, ctx) -> dict:
    val = ctx.data.val
    images = normalize(val.images[: cfg.parity_images], ctx.data.mean, ctx.data.std).numpy()
    current = art.latest("torch")
    metrics = {}
    if current.name != "baseline":
        metrics.update(export_entry(art, art.entries["baseline"], "baseline.onnx", cfg, ctx, images))
    metrics.update(export_entry(art, current, "model.onnx", cfg, ctx, images))
    if cfg.fp16:
        metrics.update(export_fp16(art, art.entries["model.onnx"], ctx, images))
    return metrics


def export_fp16(art: Artifact, fp32: ModelEntry, ctx, images: np.ndarray) -> dict:
    """model.fp16.onnx from model.onnx (edgekit.quant.fp16), with its drift from fp32 recorded. The
    stage fails only when fp16 overflows (non-finite logits); drift is reported, not judged."""
    import onnx

    from edgekit.quant.fp16 import convert_float_to_float16

    try:
        proto = convert_float_to_float16(onnx.load(str(fp32.path)))
    except ValueError as exc:
        raise EdgekitError(f"fp16 conversion failed: {exc}: drop --fp16 for this model") from None
    path = ctx.run_dir / "model.fp16.onnx"
    save_onnx(proto, path)
    ref = OrtRunner(fp32.path, threads=1).run(images)
    got = OrtRunner(path, threads=1).run(images)
    if not np.isfinite(got).all():
        path.unlink(missing_ok=True)
        raise EdgekitError("model.fp16.onnx gives non-finite logits (fp16 overflow): drop --fp16 for this model")
    art.add(ModelEntry("model.fp16.onnx", "onnx", "fp16", fp32.params, fp32.macs, path))
    return {"model.fp16.onnx": {"source": fp32.name, "max_abs_diff": float(np.abs(ref - got).max()),
                                "top1_agreement": float((ref.argmax(1) == got.argmax(1)).mean()),
                                "note": "for GPU targets; ONNX Runtime's CPU provider runs it slowly"}}
