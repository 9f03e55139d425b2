"""The interface every search algorithm follows (ask for a generation of candidates, tell their
fitness), the first generation they share, and their state as plain data for the state file.

A candidate is a vector of level indices (one per searched group) into the ascending keep ratios
`levels`. Every random draw comes from one numpy Generator whose state is saved with the rest, so a
resumed search draws exactly what an uninterrupted one would have."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from edgekit.search.config import Config


def initial_population(rng: np.random.Generator, n_genes: int, n_levels: int, size: int, n_uniform: int) -> np.ndarray:
    """`n_uniform` uniform candidates spread over the ladder from the unpruned one (level top) down to
    the most pruned, then random ones: the uniform rows are the plain-ratio baselines the search must beat,
    and the lowest of them is the likeliest to meet a tight target from the start."""
    n_uniform = min(n_uniform, size, n_levels)
    tops = np.unique(np.linspace(n_levels - 1, 0, n_uniform).round().astype(np.int64))[::-1]
    uniform = np.repeat(tops[:, None], n_genes, axis=1)
    return np.concatenate([uniform, rng.integers(0, n_levels, (size - len(tops), n_genes))]).astype(np.int64)


def snap(keep: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Level indices nearest to continuous keep ratios (ties to the lower level)."""
    return np.abs(np.asarray(keep, dtype=float)[..., None] - levels).argmin(axis=-1).astype(np.int64)


def floats_out(values: np.ndarray) -> list[float | None]:
    """JSON has no infinity: an unevaluated fitness (-inf) is written as null."""
    return [float(v) if np.isfinite(v) else None for v in np.asarray(values, dtype=float).ravel()]


def floats_in(values: list[float | None]) -> np.ndarray:
    return np.array([-np.inf if v is None else v for v in values], dtype=float)


class Algorithm:
    """ask() -> (population, genes) level indices; tell(fitness) in the same order (higher is better,
    -inf for a candidate the budget left unevaluated). Subclasses implement `_propose` (a generation
    after the first) and `_learn`, and add their own fields to the state."""

    name: ClassVar[str] = ""

    def __init__(self, levels: tuple[float, ...], n_genes: int, cfg: Config, rng: np.random.Generator):
        self.levels = np.asarray(levels, dtype=float)
        self.n_genes, self.cfg, self.rng = n_genes, cfg, rng
        self.generation = 0
        self.population = np.zeros((0, n_genes), dtype=np.int64)
        self.fitness = np.zeros(0)
        self.best_genes: np.ndarray | None = None
        self.best_fitness = -np.inf

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    def ask(self) -> np.ndarray:
        if self.generation == 0:
            self.population = initial_population(
                self.rng, self.n_genes, self.n_levels, self.cfg.population, self.cfg.uniform_seeds
            )
            self._started()
        else:
            self.population = self._propose()
        return self.population.copy()

    def tell(self, fitness) -> None:
        fitness = np.asarray(fitness, dtype=float)
        if fitness.shape != (len(self.population),):
            raise ValueError(f"tell() needs {len(self.population)} fitness values, got {fitness.shape}")
        self.fitness = fitness
        i = int(np.argmax(fitness))
        if fitness[i] > self.best_fitness:
            self.best_fitness, self.best_genes = float(fitness[i]), self.population[i].copy()
        self._learn(fitness)
        self.generation += 1

    def _started(self) -> None:
        """Hook after the first generation is drawn (PSO draws its velocities here)."""

    def _propose(self) -> np.ndarray:
        raise NotImplementedError

    def _learn(self, fitness: np.ndarray) -> None:
        """Hook after a generation's fitness is known."""

    def state(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "generation": self.generation,
            "population": self.population.tolist(),
            "fitness": floats_out(self.fitness),
            "best_genes": None if self.best_genes is None else self.best_genes.tolist(),
            "best_fitness": floats_out(np.array([self.best_fitness]))[0],
            "rng": self.rng.bit_generator.state,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.generation = int(state["generation"])
        self.population = np.array(state["population"], dtype=np.int64).reshape(-1, self.n_genes)
        self.fitness = floats_in(state["fitness"])
        self.best_genes = None if state["best_genes"] is None else np.array(state["best_genes"], dtype=np.int64)
        self.best_fitness = float(floats_in([state["best_fitness"]])[0])
        self.rng.bit_generator.state = state["rng"]
