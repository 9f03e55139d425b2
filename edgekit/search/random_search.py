"""The control: after the shared first generation, every candidate is drawn uniformly from the ladder.
A search algorithm earns its keep only by beating this at the same budget."""

from __future__ import annotations

import numpy as np

from edgekit.search.algorithm import Algorithm


class RandomSearch(Algorithm):
    name = "random"

    def _propose(self) -> np.ndarray:
        return self.rng.integers(0, self.n_levels, (self.cfg.population, self.n_genes)).astype(np.int64)
