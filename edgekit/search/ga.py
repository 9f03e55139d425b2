"""A genetic algorithm over level-index vectors: the `elite` best carried over unchanged (elitism), the
rest bred from tournament-selected parents by uniform or one-point crossover (at `crossover_rate`, else
a copy of the first parent) and per-gene mutation (each gene, with probability `mutation_rate`, moves to
another level drawn uniformly, or with `mutation: step` one level up or down: the levels are ordered
keep ratios, so a step searches near a parent where a uniform draw jumps anywhere). Re-proposed
candidates are cache hits, so elites cost nothing."""

from __future__ import annotations

import numpy as np

from edgekit.search.algorithm import Algorithm


def tournament(rng: np.random.Generator, fitness: np.ndarray, k: int) -> int:
    """Index of the fittest of `k` individuals drawn without replacement (with, if k > population)."""
    n = len(fitness)
    picks = rng.choice(n, size=k, replace=k > n)
    return int(picks[np.argmax(fitness[picks])])


def uniform_crossover(rng: np.random.Generator, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Each gene from either parent with probability 1/2."""
    return np.where(rng.random(len(a)) < 0.5, a, b)


def one_point_crossover(rng: np.random.Generator, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`a`'s genes up to a random cut, `b`'s after it (the cut leaves at least one gene of each)."""
    if len(a) < 2:
        return a.copy()
    cut = int(rng.integers(1, len(a)))
    return np.concatenate([a[:cut], b[cut:]])


def mutate(rng: np.random.Generator, genes: np.ndarray, rate: float, n_levels: int) -> np.ndarray:
    """Each gene, with probability `rate`, replaced by a different level drawn uniformly."""
    if n_levels < 2:
        return genes.copy()
    hit = rng.random(len(genes)) < rate
    shift = rng.integers(1, n_levels, len(genes))  # 1..n-1 steps round the ladder: never the same level
    return np.where(hit, (genes + shift) % n_levels, genes)


def step_mutate(rng: np.random.Generator, genes: np.ndarray, rate: float, n_levels: int) -> np.ndarray:
    """Each gene, with probability `rate`, one level up or down (inward at either end of the ladder)."""
    if n_levels < 2:
        return genes.copy()
    hit = rng.random(len(genes)) < rate
    step = np.where(rng.random(len(genes)) < 0.5, -1, 1)
    step = np.where(genes + step < 0, 1, np.where(genes + step >= n_levels, -1, step))
    return np.where(hit, genes + step, genes)


def elites(fitness: np.ndarray, n: int) -> np.ndarray:
    """Indices of the `n` fittest, best first (ties: the earlier one)."""
    return np.argsort(-fitness, kind="stable")[:n]


class GeneticAlgorithm(Algorithm):
    name = "ga"

    @property
    def mutation_rate(self) -> float:
        rate = self.cfg.mutation_rate
        return 1.0 / max(1, self.n_genes) if rate is None else rate

    def _propose(self) -> np.ndarray:
        cfg, fit, pop = self.cfg, self.fitness, self.population
        out = [pop[i].copy() for i in elites(fit, cfg.elite)]
        cross = one_point_crossover if cfg.crossover == "one_point" else uniform_crossover
        mutation = step_mutate if cfg.mutation == "step" else mutate
        while len(out) < cfg.population:
            a = pop[tournament(self.rng, fit, cfg.tournament)]
            b = pop[tournament(self.rng, fit, cfg.tournament)]
            child = cross(self.rng, a, b) if self.rng.random() < cfg.crossover_rate else a.copy()
            out.append(mutation(self.rng, child, self.mutation_rate, self.n_levels))
        return np.array(out, dtype=np.int64).reshape(-1, self.n_genes)
