"""Settings shared by every stage that trains a student against a teacher (distill, the deployment
rewrite, QAT): an optimiser plus how the KD loss weighs the teacher."""

from __future__ import annotations

from dataclasses import dataclass

from edgekit.config import ranged
from edgekit.training import OptimConfig


@dataclass
class KdConfig(OptimConfig):
    """`temperature` softens both distributions; `alpha` weights the KD term against cross-entropy."""

    temperature: float = ranged(4.0, 0.1, 100.0)
    alpha: float = ranged(0.7, 0.0, 1.0)
