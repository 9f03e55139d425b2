"""A Recipe is the whole run in one file: one section per stage plus `data` and `run`.

YAML is read with a safe loader and validated strictly (edgekit.config). `edgekit compress` builds the
same Recipe from its flags; flags override recipe values as dotted keys (`prune.ratio=0.3`)."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edgekit.config import as_dict, build
from edgekit.data import DataConfig
from edgekit.errors import EdgekitError
from edgekit.stages import distill, export, load, prune, quantize, train, validate


@dataclass
class RunConfig:
    """`output`: folder holding run folders. `name`: prefix of the run folder name (default: model)."""

    output: str = "artifacts"
    name: str | None = None


@dataclass
class Recipe:
    model: load.Config = field(default_factory=load.Config)
    data: DataConfig = field(default_factory=DataConfig)
    train: train.Config = field(default_factory=train.Config)
    prune: prune.Config = field(default_factory=prune.Config)
    distill: distill.Config = field(default_factory=distill.Config)
    export: export.Config = field(default_factory=export.Config)
    quantize: quantize.Config = field(default_factory=quantize.Config)
    validate: validate.Config = field(default_factory=validate.Config)
    run: RunConfig = field(default_factory=RunConfig)


def set_dotted(tree: dict, dotted: str, value: Any) -> None:
    node = tree
    *parents, leaf = dotted.split(".")
    for key in parents:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise EdgekitError(f"cannot set {dotted}: {key} is not a section")
    node[leaf] = value


def from_dict(tree: dict | None, where: str, overrides: dict[str, Any] | None = None) -> Recipe:
    tree = copy.deepcopy(tree) if tree is not None else {}
    if not isinstance(tree, dict):
        raise EdgekitError(f"{where}: a recipe must be a mapping of sections (model, data, train, ...), got {type(tree).__name__}")
    for dotted, value in (overrides or {}).items():
        set_dotted(tree, dotted, value)
    return build(Recipe, tree, where)


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise EdgekitError(f"recipe {path} does not exist: give a path to a .yaml recipe, e.g. recipes/mobilenet_v3_fashion_mnist.yaml")
    try:
        tree = yaml.safe_load(path.read_text())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown line"
        raise EdgekitError(f"{path}: invalid YAML at {line} ({exc.problem}): fix the syntax there") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise EdgekitError(f"{path}: not a YAML file ({type(exc).__name__}): give a YAML recipe") from None
    return tree if tree is not None else {}


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    return from_dict(read_yaml(path), str(path), overrides)


def dump(recipe: Recipe) -> str:
    return yaml.safe_dump(as_dict(recipe), sort_keys=False, default_flow_style=False)
