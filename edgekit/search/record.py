"""One evaluated candidate, as plain data (it goes into the state file and the result JSON)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass
class Record:
    index: int  # evaluation order (0 = first evaluated)
    genes: list[int]  # level index per searched group
    keep: list[float]  # keep ratio per searched group
    widths: list[int]  # channels of every prunable group: the architecture, the cache key
    macs: int
    macs_fraction: float  # of the unpruned model's MACs
    params: int
    proxy_top1: float
    latency_ms: float | None = None
    seconds: float = 0.0  # what this evaluation cost

    @property
    def uniform(self) -> bool:
        """The same keep ratio in every searched group (what a plain prune.ratio gives)."""
        return len(set(self.genes)) <= 1

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Record:
        return cls(**d)
