"""Fitness for a constrained search: maximise the accuracy proxy subject to latency <= target and/or
MACs <= target. A constrained ranking folded into one number (Deb's rules): a feasible candidate scores
its proxy top-1 (in [0, 1]); an infeasible one scores minus its relative violation (< 0), so every
feasible candidate beats every infeasible one, and among infeasible ones the nearer one wins, which
pulls the population towards the constraint without a penalty weight to tune."""

from __future__ import annotations

from dataclasses import dataclass

from edgekit.search.record import Record


@dataclass(frozen=True)
class Objective:
    target_latency_ms: float | None = None
    target_macs: float | None = None  # fraction of the baseline MACs

    @property
    def axis(self) -> str:
        """The cost the front is drawn against: latency when it is the target, else MACs."""
        return "latency_ms" if self.target_latency_ms is not None else "macs_fraction"

    def cost(self, rec: Record) -> float:
        value = rec.latency_ms if self.axis == "latency_ms" else rec.macs_fraction
        assert value is not None  # a latency target measures every candidate
        return value

    def violation(self, rec: Record) -> float:
        """Sum of the relative excesses over the targets (0 when feasible)."""
        out = 0.0
        if self.target_latency_ms is not None:
            assert rec.latency_ms is not None
            out += max(0.0, rec.latency_ms / self.target_latency_ms - 1)
        if self.target_macs is not None:
            out += max(0.0, rec.macs_fraction / self.target_macs - 1)
        return out

    def feasible(self, rec: Record) -> bool:
        return self.violation(rec) == 0

    def fitness(self, rec: Record) -> float:
        v = self.violation(rec)
        return rec.proxy_top1 if v == 0 else -v

    def target(self) -> dict:
        return {
            k: v
            for k, v in (("target_latency_ms", self.target_latency_ms), ("target_macs", self.target_macs))
            if v is not None
        }
