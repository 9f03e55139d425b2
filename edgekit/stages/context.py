from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.data.dataset import Dataset


@dataclass
class Context:
    """Inputs every stage may read (not outputs: those go into the Artifact)."""

    recipe: Any  # edgekit.recipe.Recipe
    data: Dataset
    run_dir: Path
