"""quantize: post-training static int8 quantization with ONNX Runtime's quantizer, in Q/DQ form.

Weights are signed int8, per channel. Activations depend on the target:
- `cpu`: unsigned int8 (asymmetric). ONNX Runtime's x86 kernels run U8 activations x S8 weights fast;
  signed activations (S8S8) ran slower than fp32 here. Ops that have no int8 kernel in ONNX Runtime's
  CPU provider (HardSwish, HardSigmoid, Sigmoid, ...) stay in float: wrapping them in
  DequantizeLinear/QuantizeLinear costs two extra nodes each and buys nothing.
- `tensorrt` / `jetson`: symmetric signed int8 activations and weights on every op, which is what TensorRT's
  explicit-quantization (Q/DQ) path requires.
Calibration images come from the training split (never validation), a seeded random subset.

With `max_drop` set, the int8 model's top-1 drop against the fp32 ONNX model is measured on held-out
training images (disjoint from the calibration images); past `max_drop`, the most harmful layers are
kept in float (edgekit.quant.sensitivity) and, if that cannot meet it, quantization-aware fine-tuning
is tried (edgekit.quant.qat). The file with the lowest float-layer count that meets max_drop is kept.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from edgekit.artifact import Artifact, ModelEntry
from edgekit.config import ranged
from edgekit.data.transforms import normalize
from edgekit.errors import EdgekitError
from edgekit.quant.ptq import CPU_OP_TYPES, Quantizer, calibrate  # noqa: F401  (re-exported)

NAME = "quantize"
SECTION = "quantize"


@dataclass
class Config:
    """`enabled`: produce model.int8.onnx. `calibration`: minmax, entropy or percentile range estimation.
    `calib_images`: training images used to calibrate. `percentile`: for the percentile method.
    `target`: cpu (U8 activations, S8 weights) or tensorrt / jetson (symmetric S8 everywhere, zero
    points 0: TensorRT's explicit quantization; the build stage then makes engines).
    `max_drop`: allowed top-1 drop in points against the fp32 ONNX model, measured on
    `sensitivity_images` held-out training images (null = no check, plain int8). Past it, up to
    `max_float_layers` of the most harmful layers are kept in float. `qat`: quantization-aware
    fine-tuning with KD, auto (only when mixed precision cannot meet max_drop), off or on, for
    `qat_epochs` at peak learning rate `qat_lr`."""

    enabled: bool = False
    calibration: Literal["minmax", "entropy", "percentile"] = "minmax"
    calib_images: int = ranged(512, 1, 100_000)
    calib_batch: int = ranged(32, 1, 4096)
    percentile: float = ranged(99.999, 90.0, 100.0)
    per_channel: bool = True
    target: Literal["cpu", "tensorrt", "jetson"] = "cpu"
    seed: int = 0
    max_drop: float | None = ranged(1.0, 0.0, 100.0)
    sensitivity_images: int = ranged(1000, 1, 100_000)
    max_float_layers: int = ranged(8, 1, 10_000)
    qat: Literal["auto", "off", "on"] = "auto"
    qat_epochs: int = ranged(1, 1, 1000)
    qat_lr: float = ranged(1e-4, 0.0, 1.0)


def skip(art, cfg: Config, ctx) -> str | None:
    return None if cfg.enabled else "quantize.enabled is false (use --int8)"


def _order(ctx, cfg: Config) -> torch.Tensor:
    gen = torch.Generator().manual_seed(cfg.seed)
    return torch.randperm(len(ctx.data.train), generator=gen)


def calibration_images(ctx, cfg: Config) -> np.ndarray:
    train = ctx.data.train
    idx = _order(ctx, cfg)[: cfg.calib_images]
    return normalize(train.images[idx], ctx.data.mean, ctx.data.std).numpy()


def held_out(ctx, cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """Training images after the calibration images in the same seeded order: disjoint from them,
    and never the validation split (which the report's accuracy is measured on)."""
    train = ctx.data.train
    idx = _order(ctx, cfg)[cfg.calib_images : cfg.calib_images + cfg.sensitivity_images]
    if len(idx) == 0:
        raise EdgekitError(f"no training images left for the int8 accuracy check: the split has {len(train)} and calibration takes "
                           f"quantize.calib_images={cfg.calib_images}; lower calib_images or set quantize.max_drop=null")
    return normalize(train.images[idx], ctx.data.mean, ctx.data.std).numpy(), train.labels[idx].numpy()


def quantize_onnx(src: Path, dst: Path, images: np.ndarray, cfg: Config, exclude=()) -> dict:
    with Quantizer(src, images, cfg, dst.parent) as q:
        q.quantize(dst, exclude)
        return q.info()


def _qat(art: Artifact, src: ModelEntry, cfg: Config, ctx, images: np.ndarray, held, dst: Path) -> dict:
    """Fine-tune the torch model behind model.onnx with fake quantization, export it, quantize it."""
    from edgekit.quant.qat import qat_finetune
    from edgekit.quant.sensitivity import logits_of
    from edgekit.stages import export
    from edgekit.training import OptimConfig

    source_name = art.latest("torch").name
    model = art.entries[source_name].module
    if model is None:
        raise EdgekitError(f"QAT needs the torch model {source_name} in memory: set quantize.qat=off")
    rc = ctx.recipe
    optim = OptimConfig(epochs=cfg.qat_epochs, lr=cfg.qat_lr, warmup_epochs=0.0, seed=cfg.seed,
                        batch_size=rc.distill.batch_size, device=rc.distill.device, amp=rc.distill.amp,
                        augment_pad=rc.distill.augment_pad, augment_flip=rc.distill.augment_flip)
    # QAT trains on the training split minus the held-out images, so its measured drop stays honest.
    order = _order(ctx, cfg)
    keep = torch.cat([order[: cfg.calib_images], order[cfg.calib_images + cfg.sensitivity_images :]])
    data = dataclasses.replace(ctx.data, train=ctx.data.train.subset(keep.sort().values))
    tuned, stats = qat_finetune(model, data, optim, cfg.per_channel, cfg.target != "cpu",
                                rc.distill.temperature, rc.distill.alpha)
    proto = export.to_onnx(tuned, ctx.data.input_size, rc.export.opset, rc.export.simplify)
    export.stamp(proto, art.info, f"{source_name}+qat")
    fp32 = ctx.run_dir / ".qat.fp32.onnx"
    export.save_onnx(proto, fp32)
    try:
        quantize_onnx(fp32, dst, images, cfg)
    finally:
        fp32.unlink(missing_ok=True)
    return {"source": source_name, "train_images": len(data.train), **stats, "drop": round(held.drop(logits_of(dst, held.images)), 2)}


def run(art: Artifact, cfg: Config, ctx) -> dict:
    src = art.entries["model.onnx"]
    images = calibration_images(ctx, cfg)
    dst = ctx.run_dir / "model.int8.onnx"
    metrics = {"calibration": cfg.calibration, "calib_images": len(images), "calib_split": "train", "target": cfg.target}
    with Quantizer(src.path, images, cfg, ctx.run_dir) as q:
        q.quantize(dst)
        metrics.update(q.info())
        if cfg.max_drop is not None:
            metrics.update(_check_drop(art, src, cfg, ctx, images, q, dst))
    art.add(ModelEntry("model.int8.onnx", "onnx", "int8", src.params, src.macs, dst))
    return metrics


def _check_drop(art, src, cfg: Config, ctx, images, q: Quantizer, dst: Path) -> dict:
    from edgekit.quant.sensitivity import HeldOut, logits_of, mixed_precision

    try:
        x, y = held_out(ctx, cfg)
    except EdgekitError as exc:  # a small training split: say so, keep the plain int8 model
        print(f"quantize: accuracy check skipped: {exc}", flush=True)
        return {"int8_check": f"skipped: {exc}"}
    held = HeldOut(x, y, logits_of(src.path, x))
    plain = held.drop(logits_of(dst, x))
    out: dict = {"held_out_images": len(x), "held_out_split": "train (disjoint from calibration)", "max_drop": cfg.max_drop,
                 "fp32_held_out_top1": round(held.ref_top1, 4), "int8_drop": round(plain, 2)}
    chosen = {"kind": "int8", "drop": plain, "float_layers": 0}
    mixed = None
    if plain > cfg.max_drop:
        plain_copy = dst.with_name(f".{dst.name}.plain")
        plain_copy.write_bytes(dst.read_bytes())
        try:
            mixed = mixed_precision(q, dst, plain_copy, src.path, held, plain, cfg.max_drop, cfg.max_float_layers)
        finally:
            plain_copy.unlink(missing_ok=True)
        out["mixed_precision"] = mixed
        if mixed["float_layers"]:  # else no layer helped and the file is still plain int8
            chosen = {"kind": "mixed", "drop": mixed["drop_after"], "float_layers": len(mixed["float_layers"])}
    run_qat = cfg.qat == "on" or (cfg.qat == "auto" and chosen["drop"] > cfg.max_drop)
    if run_qat:
        qat_dst = dst.with_name(f".{dst.name}.qat")
        try:
            qat = _qat(art, src, cfg, ctx, images, held, qat_dst)
            out["qat"] = qat
            # Prefer what meets max_drop with the fewest float layers, then the lowest drop.
            def rank(c):
                return (c["drop"] > cfg.max_drop, c["float_layers"], c["drop"])
            candidate = {"kind": "qat", "drop": qat["drop"], "float_layers": 0}
            if rank(candidate) < rank(chosen):
                qat_dst.replace(dst)
                chosen = candidate
        finally:
            qat_dst.unlink(missing_ok=True)
    out["chosen"] = chosen["kind"]
    out["final_drop"] = round(chosen["drop"], 2)
    out["met_max_drop"] = chosen["drop"] <= cfg.max_drop
    if chosen["kind"] == "mixed":
        out["float_layers"] = mixed["float_layers"]
    if not out["met_max_drop"]:
        print(f"quantize: held-out top-1 drop {chosen['drop']:.2f} points is above quantize.max_drop={cfg.max_drop}: "
              "try calibration=entropy/percentile, more calib_images, a larger max_float_layers or qat=on", flush=True)
    return out
