from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from edgekit.data.dataset import Dataset


@dataclass
class Context:
    """Inputs every stage may read (not outputs: those go into the Artifact)."""

    recipe: Any  # edgekit.recipe.Recipe
    data: Dataset
    run_dir: Path
    model: nn.Module | None = None  # a module given from Python (edgekit.compress), used instead of model.name
