"""A Recipe is the whole run in one file: one section per stage plus `data`, `target`, `qat`, `gate` and `run`.

YAML is read with a safe loader and validated strictly (edgekit.config). `edgekit compress` builds the
same Recipe from its flags; flags override recipe values as dotted keys (`prune.ratio=0.3`)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edgekit.config import (
    as_dict,
    build as build_config,  # `build` is also the build stage's module
)
from edgekit.data import DataConfig
from edgekit.errors import EdgekitError
from edgekit.gates import GateConfig
from edgekit.quant.qat import QatConfig
from edgekit.stages import build, distill, export, load, prune, quantize, rewrite, search, train, validate
from edgekit.target import TargetConfig


@dataclass
class RunConfig:
    """`output`: folder holding run folders. `name`: prefix of the run folder name (default: model); the
    folder is `<time>-<name>-<random>`. `dir`: the exact run folder instead (`--run-dir`): a plain name is
    made inside `output`, a path as given; it must not exist yet (no earlier run is overwritten)."""

    output: str = "artifacts"
    name: str | None = None
    dir: str | None = None


@dataclass
class Recipe:
    model: load.Config = field(default_factory=load.Config)
    data: DataConfig = field(default_factory=DataConfig)
    target: TargetConfig = field(default_factory=TargetConfig)
    train: train.Config = field(default_factory=train.Config)
    search: search.Config = field(default_factory=search.Config)
    prune: prune.Config = field(default_factory=prune.Config)
    distill: distill.Config = field(default_factory=distill.Config)
    export: export.Config = field(default_factory=export.Config)
    quantize: quantize.Config = field(default_factory=quantize.Config)
    qat: QatConfig = field(default_factory=QatConfig)
    rewrite: rewrite.Config = field(default_factory=rewrite.Config)
    build: build.Config = field(default_factory=build.Config)
    validate: validate.Config = field(default_factory=validate.Config)
    gate: GateConfig = field(default_factory=GateConfig)
    run: RunConfig = field(default_factory=RunConfig)


def set_dotted(tree: dict, dotted: str, value: Any) -> None:
    node = tree
    *parents, leaf = dotted.split(".")
    for key in parents:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise EdgekitError(f"cannot set {dotted}: {key} is not a section")
    node[leaf] = value


# Keys that moved when each setting got one home (target, qat and gate sections): old recipes get the fix
# (edgekit.config.build reports them with the recipe's other problems).
MOVED = {
    "quantize.target": "target.platform",
    "quantize.max_drop": "gate.max_drop (and quantize.check_drop: false for no int8 check)",
    "quantize.qat": "qat.mode",
    "quantize.qat_epochs": "qat.epochs",
    "quantize.qat_lr": "qat.lr",
    "build.files": "build.sources (ONNX roles: int8_onnx, fp16_onnx, onnx)",
}


def from_dict(tree: dict | None, where: str, overrides: dict[str, Any] | None = None) -> Recipe:
    tree = copy.deepcopy(tree) if tree is not None else {}
    if not isinstance(tree, dict):
        raise EdgekitError(
            f"{where}: a recipe must be a mapping of sections (model, data, train, ...), got {type(tree).__name__}"
        )
    for dotted, value in (overrides or {}).items():
        set_dotted(tree, dotted, value)  # an override's mistyped key is then reported like the file's own
    return build_config(Recipe, tree, where, moved=MOVED)  # every problem of the recipe in one error


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise EdgekitError(
            f"recipe {path} does not exist: give a path to a .yaml recipe, e.g. recipes/mobilenet_v3_fashion_mnist.yaml"
        )
    try:
        tree = yaml.safe_load(path.read_text())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        if isinstance(
            exc, yaml.constructor.ConstructorError
        ):  # e.g. !!python/object/apply: the safe loader builds plain data only
            where = f" at line {mark.line + 1}" if mark else ""
            raise EdgekitError(
                f"{path}: YAML tag refused{where} ({exc.problem}): a recipe holds plain values only; remove the tag"
            ) from None
        line = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown line"
        raise EdgekitError(f"{path}: invalid YAML at {line} ({exc.problem}): fix the syntax there") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise EdgekitError(f"{path}: not a YAML file ({type(exc).__name__}): give a YAML recipe") from None
    return tree if tree is not None else {}


def _has(tree: Any, dotted: str) -> bool:
    for key in dotted.split("."):
        if not isinstance(tree, dict) or tree.get(key) in (None, ""):
            return False
        tree = tree[key]
    return True


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None, required: tuple[str, ...] = ()) -> Recipe:
    """`required`: dotted keys the file (or an override) must set, e.g. RUN_REQUIRED for `edgekit run`."""
    tree = read_yaml(path)
    recipe = from_dict(tree, str(path), overrides)  # shape and values first: their errors are more precise
    for key in required:
        if not _has(tree, key) and (overrides or {}).get(key) in (None, ""):
            section, _, leaf = key.partition(".")
            raise EdgekitError(
                f"{path}: required key {key} is missing: add a `{section}:` section with `{leaf}: NAME` to the "
                f"recipe, or pass --set {key}=NAME"
            )
    return recipe


RUN_REQUIRED = ("model.name",)  # a recipe run on its own must say which model; compress names it on the command line


def dump(recipe: Recipe) -> str:
    return yaml.safe_dump(as_dict(recipe), sort_keys=False, default_flow_style=False)
