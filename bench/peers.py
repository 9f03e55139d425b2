"""The peer rows: what a user gets today from each tool with its own defaults.

Each function returns a `Made` (the ONNX file, MACs per image, wall seconds) or raises; compare.py turns
an exception into a row with an `error` field. The baseline and the calibration images are the same
ones edgekit's row gets."""

from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from edgekit.metrics import count_macs
from edgekit.progress import Progress
from edgekit.training import OptimConfig, fit
from edgekit.zoo.layers import ClassifierMixin


@dataclass
class Made:
    path: Path
    macs: int
    seconds: float


def torch_pruning(baseline: torch.nn.Module, data, ratio: float, budget: OptimConfig, export, path: Path) -> Made:
    """Torch-Pruning's MagnitudePruner at the same ratio with its defaults: L2 group magnitude
    (GroupMagnitudeImportance()), no channel rounding, the classifier kept (as in its README) and the
    layers the zoo model says must keep their channels (`pruning_ignored_layers()`: only the classifier
    for most families; ShuffleNet v2's convs that write through its chunk + shuffle, which torch-pruning's
    split handler crashes on otherwise: a TP user would have to find and list them by hand); then the
    same fine-tuning budget as edgekit's distill stage, with plain cross-entropy; fp32 ONNX."""
    import torch_pruning as tp

    start = time.perf_counter()
    model = copy.deepcopy(baseline).eval()
    assert isinstance(model, ClassifierMixin)  # a zoo model: get_classifier() names the layer to keep
    pruner = tp.pruner.MagnitudePruner(
        model,
        torch.zeros(1, *data.input_size),
        importance=tp.importance.GroupMagnitudeImportance(),
        pruning_ratio=ratio,
        ignored_layers=list(model.pruning_ignored_layers()),  # [classifier] + a family's own
    )
    pruner.step()
    if budget.epochs:
        fit(model, data, budget, lambda m, x, y: F.cross_entropy(m(x), y), "torch-pruning finetune")
    export(model.eval(), path)
    return Made(path, count_macs(model, data.input_size), time.perf_counter() - start)


class CalibrationReader:
    """onnxruntime.quantization.CalibrationDataReader over the calibration images, in batches."""

    def __init__(self, images: np.ndarray, batch: int, input_name: str = "input"):
        self.images, self.batch, self.input_name, self.pos = images, batch, input_name, 0
        self.bar = Progress("ort-quantize-static calibrate", len(images))

    def get_next(self):
        if self.pos >= len(self.images):
            return None
        x = np.ascontiguousarray(self.images[self.pos : self.pos + self.batch])
        self.pos += len(x)
        self.bar.update(len(x))
        return {self.input_name: x}

    def rewind(self):
        self.pos = 0


def ort_quantize_static(baseline_onnx: Path, images: np.ndarray, batch: int, macs: int, path: Path) -> Made:
    """onnxruntime.quantization.quantize_static with every argument at its default (QDQ, S8
    activations and weights, per-tensor, MinMax, no pre-processing) on the unpruned baseline."""
    from onnxruntime.quantization import quantize_static

    start = time.perf_counter()
    quantize_static(str(baseline_onnx), str(path), CalibrationReader(images, batch))
    return Made(path, macs, time.perf_counter() - start)


def nncf_available() -> str | None:
    """None when NNCF imports, else why not (the row then carries this as its error)."""
    os.environ.setdefault("NNCF_CI", "1")  # NNCF's own switch that turns its usage telemetry off
    try:
        import nncf  # noqa: F401
    except ImportError as exc:
        return f"nncf is not installed ({exc}): pip install nncf (bench extra) to get this row"
    return None


def nncf_ptq(baseline_onnx: Path, images: np.ndarray, macs: int, path: Path) -> Made:
    """nncf.quantize(onnx_model, nncf.Dataset(...)) with NNCF's defaults (performance preset, fast
    bias correction), fed one image per item as NNCF recommends; subset_size is the number of
    calibration images so NNCF sees exactly the images the other rows see (its default is 300)."""
    reason = nncf_available()
    if reason:
        raise RuntimeError(reason)
    import logging

    import nncf
    import onnx

    logging.getLogger("nncf").setLevel(logging.WARNING)
    start = time.perf_counter()
    model = onnx.load(str(baseline_onnx))
    items = [np.ascontiguousarray(images[i : i + 1]) for i in range(len(images))]
    dataset = nncf.Dataset(items, lambda x: {"input": x})
    quantized = nncf.quantize(model, dataset, subset_size=len(items))
    onnx.save(quantized, str(path))
    return Made(path, macs, time.perf_counter() - start)
