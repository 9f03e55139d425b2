"""quantize: post-training static int8 quantization with ONNX Runtime's quantizer, in Q/DQ form
(edgekit.quant). The int8 form follows `target.platform`:
- `cpu`: unsigned int8 activations (asymmetric), signed per-channel weights. ONNX Runtime's x86
  kernels run U8 activations x S8 weights fast; signed activations (S8S8) ran slower than fp32 here.
  Ops without an int8 kernel in ONNX Runtime's CPU provider (HardSwish, HardSigmoid, Sigmoid, ...) stay
  in float: wrapping them in DequantizeLinear/QuantizeLinear costs two extra nodes each and buys nothing.
- `tensorrt` / `jetson`: symmetric signed int8 activations and weights on every op, which is what
  TensorRT's explicit-quantization (Q/DQ) path requires.
Calibration images come from the training split (never validation), a seeded random subset.

With `check_drop`, the int8 model's top-1 drop against the fp32 ONNX model is measured on held-out
training images (disjoint from the calibration images) and compared with `gate.max_drop`; past it, the
most harmful layers are kept in float (edgekit.quant.sensitivity) and, if that cannot meet it,
quantization-aware fine-tuning is tried (edgekit.quant.qat, the recipe's `qat` section). The file with
the fewest float layers that meets the limit is kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edgekit.artifact import Artifact, ModelEntry, Role
from edgekit.config import ranged
from edgekit.data.arrays import TrainOrder
from edgekit.errors import EdgekitError
from edgekit.export import metadata, save_onnx, stamp, to_onnx
from edgekit.quant.ptq import PtqSettings, Quantizer, calibration_ranks
from edgekit.quant.sensitivity import HeldOut, logits_of, mixed_precision
from edgekit.stages.base import Stage, register
from edgekit.stages.context import Context

log = logging.getLogger(__name__)


@dataclass
class Config:
    """`enabled`: produce model.int8.onnx. `calibration`: minmax, entropy or percentile range estimation.
    `calib_images`: training images used to calibrate. `percentile`: for the percentile method.
    `check_drop`: measure the int8 top-1 drop against the fp32 ONNX model on `sensitivity_images`
    held-out training images and repair it when it is above `gate.max_drop` (false = plain int8, no
    check). Past it, up to `max_float_layers` of the most harmful layers are kept in float, then QAT
    (the `qat` section) is tried. The int8 form comes from `target.platform`."""

    enabled: bool = False
    calibration: Literal["minmax", "entropy", "percentile"] = "minmax"
    calib_images: int = ranged(512, 1, 100_000)
    calib_batch: int = ranged(32, 1, 4096)
    percentile: float = ranged(99.999, 90.0, 100.0)
    per_channel: bool = True
    seed: int = 0
    check_drop: bool = True
    sensitivity_images: int = ranged(1000, 1, 100_000)
    max_float_layers: int = ranged(8, 1, 10_000)


def skip(art: Artifact, cfg: Config, ctx: Context) -> str | None:
    return None if cfg.enabled else "quantize.enabled is false (use --int8)"


def settings(cfg: Config, target: str) -> PtqSettings:
    return PtqSettings(cfg.calibration, cfg.calib_batch, cfg.percentile, cfg.per_channel, target)


def train_order(ctx: Context, cfg: Config) -> TrainOrder:
    return TrainOrder(ctx.data, cfg.seed, cfg.calib_images, cfg.sensitivity_images)


def quantize_onnx(src: Path, dst: Path, images: np.ndarray, ptq: PtqSettings, exclude=()) -> dict:
    with Quantizer(src, images, ptq, dst.parent) as q:
        q.quantize(dst, exclude)
        return q.info()


def run(art: Artifact, cfg: Config, ctx: Context) -> dict:
    src = art[Role.ONNX]
    target = ctx.recipe.target.platform
    order = train_order(ctx, cfg)
    images = order.calibration()
    dst = ctx.run_dir / Role.INT8_ONNX.spec.file
    ptq = settings(cfg, ctx.recipe.target.int8_form)
    metrics = {
        "calibration": cfg.calibration,
        "calib_images": len(images),
        "calib_split": "train",
        "calibration_ranks": calibration_ranks(ptq),
        "target": target,
    }
    with Quantizer(src.path, images, ptq, ctx.run_dir) as q:
        q.quantize(dst)
        metrics.update(q.info())
        if cfg.check_drop:
            metrics.update(_check_drop(art, src, cfg, ctx, order, q, dst))
    art.add(Role.INT8_ONNX, dst, src.params, src.macs, source=Role.ONNX)
    return metrics


def _qat(art: Artifact, ctx: Context, order: TrainOrder, ptq: PtqSettings, held: HeldOut, dst: Path) -> dict:
    """Fine-tune the torch model behind model.onnx with fake quantization, export it at the run's opset,
    and quantize it with the same settings and calibration images as plain int8."""
    from edgekit.quant.qat import qat_finetune

    source = art.latest("torch")
    if source.module is None:
        raise EdgekitError(f"QAT needs the torch model {source.name} in memory: set qat.mode=off")
    qat, export_cfg = ctx.recipe.qat, ctx.recipe.export
    # QAT trains on the training split minus the held-out images, so its measured drop stays honest.
    data = replace(ctx.data, train=order.rest())
    tuned, stats = qat_finetune(
        source.module, data, qat, ptq.per_channel, ptq.target != "cpu", qat.temperature, qat.alpha
    )
    proto = to_onnx(tuned, ctx.data.input_size, export_cfg.opset, export_cfg.simplify)
    stamp(proto, metadata(art.info, f"{source.name}+qat"))
    fp32 = ctx.run_dir / ".qat.fp32.onnx"
    save_onnx(proto, fp32)
    try:
        quantize_onnx(fp32, dst, order.calibration(), ptq)
    finally:
        fp32.unlink(missing_ok=True)
    return {
        "source": source.name,
        "train_images": len(data.train),
        **stats,
        "drop": round(held.drop(logits_of(dst, held.images)), 2),
    }


def _check_drop(
    art: Artifact, src: ModelEntry, cfg: Config, ctx: Context, order: TrainOrder, q: Quantizer, dst: Path
) -> dict:
    limit = ctx.recipe.gate.max_drop
    try:
        x, y = order.held_out()
    except EdgekitError as exc:  # a small training split: say so, keep the plain int8 model
        log.info(f"quantize: accuracy check skipped: {exc}")
        return {"int8_check": f"skipped: {exc}"}
    held = HeldOut(x, y, logits_of(src.path, x))
    plain = held.drop(logits_of(dst, x))
    out: dict = {
        "held_out_images": len(x),
        "held_out_split": "train (disjoint from calibration)",
        "max_drop": limit,
        "fp32_held_out_top1": round(held.ref_top1, 4),
        "int8_drop": round(plain, 2),
    }
    chosen: dict[str, Any] = {"kind": "int8", "drop": plain, "float_layers": 0}
    mixed = None
    if plain > limit:
        plain_copy = dst.with_name(f".{dst.name}.plain")
        plain_copy.write_bytes(dst.read_bytes())
        try:
            mixed = mixed_precision(q, dst, plain_copy, src.path, held, plain, limit, cfg.max_float_layers)
        finally:
            plain_copy.unlink(missing_ok=True)
        out["mixed_precision"] = mixed
        if mixed["float_layers"]:  # else no layer helped and the file is still plain int8
            chosen = {"kind": "mixed", "drop": mixed["drop_after"], "float_layers": len(mixed["float_layers"])}
    mode = ctx.recipe.qat.mode
    if mode == "on" or (mode == "auto" and chosen["drop"] > limit):
        qat_dst = dst.with_name(f".{dst.name}.qat")
        try:
            qat = _qat(art, ctx, order, q.cfg, held, qat_dst)
            out["qat"] = qat

            # Prefer what meets the limit with the fewest float layers, then the lowest drop.
            def rank(c):
                return (c["drop"] > limit, c["float_layers"], c["drop"])

            candidate = {"kind": "qat", "drop": qat["drop"], "float_layers": 0}
            if rank(candidate) < rank(chosen):
                qat_dst.replace(dst)
                chosen = candidate
        finally:
            qat_dst.unlink(missing_ok=True)
    out["chosen"] = chosen["kind"]
    out["final_drop"] = round(chosen["drop"], 2)
    out["met_max_drop"] = chosen["drop"] <= limit
    if chosen["kind"] == "mixed":
        assert mixed is not None
        out["float_layers"] = mixed["float_layers"]
    if not out["met_max_drop"]:  # a failed stage (exit 1, later stages skipped unless --keep-going), not a line
        out["failed"] = (
            f"{dst.name}: held-out top-1 drop {chosen['drop']:.2f} points is above gate.max_drop={limit} after the "
            f"{chosen['kind']} repair; try calibration=entropy/percentile, more calib_images, a larger "
            "max_float_layers, qat.mode=on, or ship the fp32 model.onnx"
        )
    return out


STAGE = register(
    Stage(
        name="quantize",
        section="quantize",
        config=Config,
        run=run,
        skip=skip,
        consumes=(Role.ONNX,),
        produces=(Role.INT8_ONNX,),
    )
)
