"""Particle swarm optimisation in the continuous keep-ratio space: each particle's position is a keep
ratio per searched group, clipped to the ladder's [min, max]; the candidate it proposes is the position
snapped to the nearest level. Velocity update: inertia * v + cognitive * r1 * (personal best - x) +
social * r2 * (swarm best - x), r1, r2 ~ U(0, 1) per gene, clipped to +-max_velocity of the range."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgekit.search.algorithm import Algorithm, floats_in, floats_out, snap


def pso_step(
    rng: np.random.Generator,
    x: np.ndarray,
    v: np.ndarray,
    personal: np.ndarray,
    best: np.ndarray,
    coeffs: tuple[float, float, float],
    vmax: float,
    bounds: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """One velocity and position update; positions stay within `bounds`, velocities within +-vmax."""
    w, c1, c2 = coeffs
    r1, r2 = rng.random(x.shape), rng.random(x.shape)
    v = np.clip(w * v + c1 * r1 * (personal - x) + c2 * r2 * (best - x), -vmax, vmax)
    x_new = np.clip(x + v, *bounds)
    return x_new, x_new - x  # a particle stopped at a wall loses the velocity the wall took


class ParticleSwarm(Algorithm):
    name = "pso"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        shape = (self.cfg.population, self.n_genes)
        self.x, self.v = np.zeros(shape), np.zeros(shape)
        self.personal = np.zeros(shape, dtype=np.int64)  # best candidate (level indices) each particle saw
        self.personal_fitness = np.full(self.cfg.population, -np.inf)

    @property
    def bounds(self) -> tuple[float, float]:
        return float(self.levels[0]), float(self.levels[-1])

    @property
    def vmax(self) -> float:
        lo, hi = self.bounds
        return max(self.cfg.max_velocity * (hi - lo), 1e-9)

    def _started(self) -> None:
        self.x = self.levels[self.population].astype(float)
        self.v = self.rng.uniform(-self.vmax, self.vmax, self.x.shape)

    def _propose(self) -> np.ndarray:
        return snap(self.x, self.levels)

    def _learn(self, fitness: np.ndarray) -> None:
        better = fitness > self.personal_fitness
        self.personal[better] = self.population[better]
        self.personal_fitness[better] = fitness[better]
        if self.best_genes is None:  # nothing evaluated yet: stand still
            return
        cfg = self.cfg
        self.x, self.v = pso_step(
            self.rng,
            self.x,
            self.v,
            self.levels[self.personal],
            self.levels[self.best_genes][None, :],
            (cfg.inertia, cfg.cognitive, cfg.social),
            self.vmax,
            self.bounds,
        )

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "positions": self.x.tolist(),
            "velocities": self.v.tolist(),
            "personal": self.personal.tolist(),
            "personal_fitness": floats_out(self.personal_fitness),
        }

    def restore(self, state: dict[str, Any]) -> None:
        super().restore(state)
        shape = (self.cfg.population, self.n_genes)
        self.x = np.array(state["positions"], dtype=float).reshape(shape)
        self.v = np.array(state["velocities"], dtype=float).reshape(shape)
        self.personal = np.array(state["personal"], dtype=np.int64).reshape(shape)
        self.personal_fitness = floats_in(state["personal_fitness"])
