"""Stages in pipeline order. Each module has NAME, a strict `Config` dataclass, and
`run(artifact, cfg, ctx) -> metrics`; `skip(cfg, ctx)` returns a reason when the stage does not apply."""
from __future__ import annotations

from edgekit.stages import build, distill, export, load, prune, quantize, train, validate

ORDER = [load, train, prune, distill, export, quantize, build, validate]

__all__ = ["ORDER"]
