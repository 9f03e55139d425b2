"""Stages in pipeline order: thin adapters (config, skip, run) over the libraries, each registered in
STAGES by its own module (edgekit.stages.base describes the contract). The order lives only here."""

from __future__ import annotations

from edgekit.stages import build, distill, export, load, prune, quantize, rewrite, train, validate  # noqa: F401  (registration)
from edgekit.stages.base import STAGES, Stage

ORDER: list[Stage] = [
    STAGES.get(name)
    for name in ("load", "train", "prune", "distill", "export", "quantize", "rewrite", "build", "validate")
]

__all__ = ["ORDER", "STAGES", "Stage"]
