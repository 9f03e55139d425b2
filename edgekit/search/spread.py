"""A generation's new candidates evaluated across the ranks of a distributed run (edgekit.sharding).

Each rank prunes, recalibrates and scores a contiguous share of the candidates (`Evaluator.score`); rank 0
then records them in the generation's order and, when the search measures latency, times them itself,
one after another: ranks timing at once on one machine would slow each other and skew the figures.
The evaluator (trained model, space, proxy images) goes to the ranks once per search; later generations
send only the candidates. The records equal a one-process search's: a candidate's score does not depend
on the rank that computed it, and the budget is applied to the generation's new candidates in order, as
the one-process loop applies it."""

from __future__ import annotations

import uuid
from functools import partial

from edgekit.distributed import bounds
from edgekit.search.evaluator import Evaluator
from edgekit.search.record import Record
from edgekit.search.space import Genes
from edgekit.sharding import across_ranks

_HELD: dict[str, Evaluator] = {}  # on every rank: the evaluator of the search under way


def _share(token: str, sent: Evaluator | None, candidates: list[list[int]], rank: int, world: int) -> list[dict]:
    if sent is not None:
        _HELD.clear()
        _HELD[token] = sent
    evaluator = _HELD[token]
    start, stop = bounds(len(candidates), rank, world)
    return [evaluator.score(genes) for genes in candidates[start:stop]]


class Spread:
    """Evaluate candidates across the ranks with `evaluator`'s settings (one per search)."""

    def __init__(self, evaluator: Evaluator):
        self.evaluator, self.token, self.sent = evaluator, uuid.uuid4().hex, False

    def evaluate(self, candidates: list[Genes]) -> list[Record]:
        """Score `candidates` (new ones, distinct architectures) across the ranks; their records in order."""
        if not candidates:
            return []
        payload = None if self.sent else self.evaluator.portable()
        levels = [[int(g) for g in genes] for genes in candidates]
        parts = across_ranks(partial(_share, self.token, payload, levels))
        self.sent = True
        scored = [s for part in parts for s in part]
        return [self.evaluator.add(genes, s) for genes, s in zip(levels, scored, strict=True)]
