"""Stages in pipeline order: thin adapters (config, skip, run) over the libraries, each registered in
STAGES by its own module (edgekit.stages.base describes the contract). The order lives only here."""

from __future__ import annotations

from edgekit.stages import (  # noqa: F401  (registration)
    build,
    distill,
    export,
    load,
    prune,
    quantize,
    rewrite,
    search,
    train,
    validate,
)
from edgekit.stages.base import STAGES, Stage

ORDER: list[Stage] = [
    STAGES.get(name)
    for name in ("load", "train", "search", "prune", "distill", "export", "quantize", "rewrite", "build", "validate")
]

__all__ = ["ORDER", "STAGES", "Stage"]
