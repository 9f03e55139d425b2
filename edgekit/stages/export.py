"""export: the current torch model to model.onnx (and the unpruned baseline to baseline.onnx, so the
report compares like with like in ONNX Runtime), each parity-checked against PyTorch (a failed check
fails the stage); with `fp16`, model.fp16.onnx too. The work is edgekit.export's."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from edgekit.artifact import Artifact, ModelEntry, Role
from edgekit.backends.ort import OrtRunner
from edgekit.config import ranged
from edgekit.data.arrays import val_arrays
from edgekit.errors import EdgekitError
from edgekit.export import DEFAULT_OPSET, export_checked, metadata, save_onnx
from edgekit.stages.base import Stage, register
from edgekit.stages.context import Context


@dataclass
class Config:
    """`opset`: ONNX opset (17-21). `simplify`: run onnxsim. Parity: on `parity_images` validation
    images the ONNX logits must stay within `parity_atol + parity_rtol * max |logit|` of PyTorch's
    (export.onnx_file.export_checked says why relative) and agree on top-1 for at least
    `parity_min_agreement` of them, or the stage fails. `fp16`: also write model.fp16.onnx
    (fp16 weights and activations, float32 input and output; meant for GPU targets: ONNX Runtime's CPU
    provider runs it, with casts around the many ops it has no fp16 kernel for, slowly)."""

    opset: int = ranged(DEFAULT_OPSET, 17, 21)
    simplify: bool = True
    parity_images: int = ranged(256, 1, 100_000)
    parity_atol: float = ranged(1e-3, 0.0, 10.0)
    parity_rtol: float = ranged(1e-4, 0.0, 1.0)
    parity_min_agreement: float = ranged(0.99, 0.0, 1.0)
    fp16: bool = False


def export_entry(art: Artifact, source: ModelEntry, role: Role, cfg: Config, ctx: Context, images: np.ndarray) -> dict:
    """Export `source` as `role` into the run folder; returns the parity figures keyed by file name."""
    if source.module is None:
        raise EdgekitError(f"{source.name} is not in memory, so it cannot be exported: rerun the stage that makes it")
    path = ctx.run_dir / role.spec.file
    check = export_checked(
        source.module,
        path,
        ctx.data.input_size,
        images,
        metadata(art.info, source.name),
        opset=cfg.opset,
        simplify=cfg.simplify,
        atol=cfg.parity_atol,
        rtol=cfg.parity_rtol,
        min_agreement=cfg.parity_min_agreement,
        label=source.name,
    )
    entry = art.add(role, path, source.params, source.macs, source=source.role)
    return {entry.name: {"source": source.name, "opset": cfg.opset, **check}}


def export_fp16(art: Artifact, fp32: ModelEntry, ctx: Context, images: np.ndarray) -> dict:
    """model.fp16.onnx from model.onnx (edgekit.quant.fp16), with its drift from fp32 recorded. The
    stage fails only when fp16 overflows (non-finite logits); drift is reported, not judged."""
    from edgekit.quant.fp16 import convert_float_to_float16

    try:
        proto = convert_float_to_float16(onnx.load(str(fp32.path)))
    except ValueError as exc:
        raise EdgekitError(f"fp16 conversion failed: {exc}: drop --fp16 for this model") from None
    path = ctx.run_dir / Role.FP16_ONNX.spec.file
    save_onnx(proto, path)
    ref = OrtRunner(fp32.path, threads=1).run(images)
    got = OrtRunner(path, threads=1).run(images)
    if not np.isfinite(got).all():
        path.unlink(missing_ok=True)
        raise EdgekitError("model.fp16.onnx gives non-finite logits (fp16 overflow): drop --fp16 for this model")
    entry = art.add(Role.FP16_ONNX, path, fp32.params, fp32.macs, source=fp32.role)
    return {
        entry.name: {
            "source": fp32.name,
            "max_abs_diff": float(np.abs(ref - got).max()),
            "top1_agreement": float((ref.argmax(1) == got.argmax(1)).mean()),
            "note": "for GPU targets; ONNX Runtime's CPU provider runs it slowly",
        }
    }


def run(art: Artifact, cfg: Config, ctx: Context) -> dict:
    images, _ = val_arrays(ctx.data, cfg.parity_images)
    current = art.latest("torch")
    metrics = {}
    if current.role != Role.BASELINE:
        metrics.update(export_entry(art, art[Role.BASELINE], Role.BASELINE_ONNX, cfg, ctx, images))
    metrics.update(export_entry(art, current, Role.ONNX, cfg, ctx, images))
    if cfg.fp16:
        metrics.update(export_fp16(art, art[Role.ONNX], ctx, images))
    return metrics


STAGE = register(
    Stage(
        name="export",
        section="export",
        config=Config,
        run=run,
        consumes=(Role.BASELINE, Role.PRUNED, Role.DISTILLED),
        produces=(Role.BASELINE_ONNX, Role.ONNX, Role.FP16_ONNX),
    )
)
