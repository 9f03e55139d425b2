"""What every row starts from: the recipe, the data, the trained baseline and its fp32 ONNX export.

The baseline is trained (or taken from edgekit's baseline cache) by edgekit's own load and train stages,
so the demo's cached baseline is reused and a second bench run never trains again."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from edgekit import export
from edgekit.artifact import Artifact, Role
from edgekit.data import load_data
from edgekit.data.arrays import TrainOrder
from edgekit.data.transforms import normalize
from edgekit.recipe import Recipe, from_dict, load_recipe
from edgekit.stages import load, train
from edgekit.stages.context import Context

REPO = Path(__file__).resolve().parent.parent
SLICE = REPO / "tests" / "data" / "fashion-mnist"

# Models whose default budget is too slow for this 2-core CPU use the shipped recipe (a smaller training
# and distillation budget); every other model runs `edgekit compress MODEL --prune 0.3 --int8`.
BUDGET_RECIPES = {
    "resnet18": REPO / "recipes" / "resnet18_fashion_mnist.yaml",
    "shufflenet_v2_x1_0": REPO / "recipes" / "shufflenet_v2_fashion_mnist.yaml",
}

# Pipeline settings of the edgekit row: the default pipeline (prune 0.3 + KD + int8).
DEFAULT_PIPELINE = {"prune.ratio": 0.3, "quantize.enabled": True}

# --quick: the shipped 1,500-image slice, one epoch everywhere, few calibration images.
QUICK = {
    "data.root": str(SLICE),
    "train.epochs": 1,
    "distill.epochs": 1,
    "quantize.calib_images": 64,
    "export.parity_images": 64,
}

# The bench measures every row itself (same images, same interleaved rounds), so the pipeline's own
# validate stage is cut to a token pass; its seconds are left out of edgekit's wall time anyway.
TOKEN_VALIDATE = {
    "validate.val_images": 256,
    "validate.rounds": 1,
    "validate.min_runs": 1,
    "validate.min_seconds": 0.0,
    "validate.warmup_s": 0.0,
}


def search_sets(train_limit: int) -> dict:
    """The settings both search benches (bench/search.py, bench/search_algorithms.py) add to the recipe, so
    they train and reuse the same cached baseline: int8 off (they compare pruned architectures) and the
    training-image limit (0: the whole split)."""
    return {"quantize.enabled": False, **({"data.train_limit": train_limit} if train_limit else {})}


def recipe_for(model: str, data: str, quick: bool, sets: dict | None = None, **extra) -> Recipe:
    """The recipe of the edgekit row, built as `edgekit compress` builds it (model + flag overrides)."""
    over = {
        "model.name": model,
        "data.name": data,
        **DEFAULT_PIPELINE,
        **(QUICK if quick else {}),
        **TOKEN_VALIDATE,
        **(sets or {}),
        **extra,
    }
    path = BUDGET_RECIPES.get(model)
    return load_recipe(path, over) if path else from_dict({}, "bench", over)


def recipe_source(model: str) -> str:
    path = BUDGET_RECIPES.get(model)
    return str(path.relative_to(REPO)) if path else "edgekit defaults"


def dataset(recipe: Recipe):
    return load_data(recipe.data)


def trained_baseline(recipe: Recipe, data, work: Path) -> tuple[Path, torch.nn.Module, dict]:
    """Run edgekit's load + train stages into `work/baseline` (train uses and fills edgekit's cache)."""
    folder = work / "baseline"
    folder.mkdir(parents=True, exist_ok=True)
    ctx = Context(recipe, data, folder)
    art = Artifact(folder)
    load.run(art, recipe.model, ctx)
    start = time.perf_counter()
    stats = train.run(art, recipe.train, ctx) if recipe.train.epochs else {"cached": False, "untrained": True}
    stats["seconds"] = round(time.perf_counter() - start, 2)
    entry = art[Role.BASELINE]
    assert entry.module is not None  # load/train leave the model in memory
    return entry.path, entry.module.eval(), stats


def calibration_set(recipe: Recipe, data) -> np.ndarray:
    """The calibration images edgekit's quantize stage uses: seeded subset of the training split."""
    return TrainOrder(data, recipe.quantize.seed, recipe.quantize.calib_images).calibration()


def validation_set(data) -> tuple[np.ndarray, np.ndarray]:
    return normalize(data.val.images, data.mean, data.std).numpy(), data.val.labels.numpy()


def export_onnx(model: torch.nn.Module, data, recipe: Recipe, path: Path) -> Path:
    """fp32 ONNX with edgekit's exporter (TorchScript exporter + onnxsim) for every bench row, so the
    rows differ in compression only, not in how the graph was written."""
    proto = export.to_onnx(model, data.input_size, recipe.export.opset, simplify=True)
    export.save_onnx(proto, path)
    return path
