"""rewrite: the deployment rewrite as an extra candidate (edgekit.rewrite). The run's current torch
model (the distilled student) gets ReLU for HardSwish/SiLU and, with `drop_se`, loses its SE blocks;
it is distilled from the original (the unpruned baseline) to recover accuracy, exported to
rewritten.onnx and, in --int8 runs, quantized to rewritten.int8.onnx with the quantize stage's
settings and calibration images. Both files are candidates: validate measures them beside the others,
and the ship rule takes one only when it is the fastest that stays within the accuracy gate; one that
misses the gate is reported, never shipped, and does not fail the run.

`mode: auto` runs it in --int8 runs of models it changes (MobileNetV3, EfficientNet, GhostNet, SE
nets); `on` also without --int8 (fp32 only); `off` never."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from edgekit.artifact import Artifact, Role
from edgekit.config import ranged
from edgekit.data.arrays import val_arrays
from edgekit.distill import Objective
from edgekit.distill.config import KdConfig
from edgekit.distill.teacher_logits import shared as shared_logits
from edgekit.errors import EdgekitError
from edgekit.export import export_checked, metadata
from edgekit.metrics import count_macs, count_params
from edgekit.rewrite import applies_to, rewrite
from edgekit.seeding import seeded
from edgekit.stages.base import Stage, register
from edgekit.stages.context import Context
from edgekit.stages.quantize import quantize_onnx, settings, train_order
from edgekit.training import fit
from edgekit.training_layout import teacher_placed

log = logging.getLogger(__name__)


@dataclass
class Config(KdConfig):
    """`mode`: auto (in --int8 runs, where it changes the model), on, off. `drop_se`: remove SE blocks
    too (the "minimalistic" form); false keeps them, with their float gates. Distillation from the
    baseline: `epochs`, `lr`, `temperature`, `alpha` as in the distill section. Two epochs: in the demo
    (MobileNetV3, 60,000 images) rewritten.onnx scored 0.43 points below the distilled model it came
    from after 1 epoch, and 0.23 and 0.29 above it after 2 and 3 (91.37% and 91.43% from the same
    91.14% model): the third epoch bought 0.06 points for 46 s of a 10-minute demo."""

    mode: Literal["auto", "on", "off"] = "auto"
    drop_se: bool = True
    epochs: int = ranged(2, 0, 10_000)
    lr: float = ranged(3e-3, 0.0, 10.0)
    warmup_epochs: float = ranged(0.0, 0.0, 100.0)


def skip(art: Artifact, cfg: Config, ctx: Context) -> str | None:
    if cfg.mode == "off":
        return "rewrite.mode is off"
    if cfg.mode == "auto" and not ctx.recipe.quantize.enabled:
        return "the deployment rewrite runs in --int8 runs (rewrite.mode: on runs it anyway)"
    current = art.latest("torch")
    if current.module is None:
        return f"{current.name} is not in memory (a resumed run): the rewrite needs it"
    if not applies_to(current.module, cfg.drop_se):
        what = "HardSwish/SiLU/GELU/Mish activations" + (" or SE blocks" if cfg.drop_se else "")
        return f"{current.name} has no {what}: nothing to rewrite"
    return None


def run(art: Artifact, cfg: Config, ctx: Context) -> dict:
    current = art.latest("torch")
    assert current.module is not None
    teacher = art[Role.BASELINE].module
    if teacher is None:
        raise EdgekitError("the rewrite distills from the baseline, which is not in memory: set rewrite.mode=off")
    done = rewrite(current.module, cfg.drop_se)
    student = done.model
    log.info(f"rewrite {current.name}: {done.summary()}; distilling {cfg.epochs} epochs from the baseline")
    with seeded(cfg.seed):
        objective = Objective(
            student,
            teacher.eval(),
            ctx.data.input_size,
            temperature=cfg.temperature,
            alpha=cfg.alpha,
            logits=shared_logits(teacher, ctx.data.train.images),  # the distill stage's, when it ran
        )
    with teacher_placed(teacher, cfg.device, ctx.data):  # the baseline goes back to validate on the CPU
        stats = fit(student, ctx.data, cfg, objective, "rewrite", resume_file=ctx.run_dir / ".rewrite.epoch.pt")
    student.eval()
    params, macs = count_params(student), count_macs(student, ctx.data.input_size)
    exp = ctx.recipe.export
    images, _ = val_arrays(ctx.data, exp.parity_images)
    fp32 = ctx.run_dir / Role.REWRITTEN_ONNX.spec.file
    parity = export_checked(
        student,
        fp32,
        ctx.data.input_size,
        images,
        metadata(art.info, f"{current.name}+rewrite"),
        opset=exp.opset,
        simplify=exp.simplify,
        atol=exp.parity_atol,
        rtol=exp.parity_rtol,
        min_agreement=exp.parity_min_agreement,
        label="the rewritten model",
    )
    art.add(Role.REWRITTEN_ONNX, fp32, params, macs, source=current.role)
    metrics: dict = {
        "source": current.name,
        "teacher": "baseline",
        "changes": done.summary(),
        "activations_to_relu": done.activations,
        "se_removed": done.se_removed,
        "params": params,
        "macs": macs,
        **stats,
        **objective.teacher_stats(),
        "parity": parity,
    }
    quant = ctx.recipe.quantize
    if quant.enabled:
        int8 = ctx.run_dir / Role.REWRITTEN_INT8_ONNX.spec.file
        # The same calibration images and int8 form as model.int8.onnx: the two int8 files differ only
        # by the rewrite.
        calib = train_order(ctx, quant).calibration()
        metrics["int8"] = quantize_onnx(fp32, int8, calib, settings(quant, ctx.recipe.target.int8_form))
        art.add(Role.REWRITTEN_INT8_ONNX, int8, params, macs, source=Role.REWRITTEN_ONNX)
    return metrics


STAGE = register(
    Stage(
        name="rewrite",
        section="rewrite",
        config=Config,
        run=run,
        skip=skip,
        consumes=(Role.BASELINE, Role.PRUNED, Role.DISTILLED),
        produces=(Role.REWRITTEN_ONNX, Role.REWRITTEN_INT8_ONNX),
    )
)
