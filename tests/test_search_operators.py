"""The search algorithms' operators, apart from any model: GA crossover, mutation, selection and elitism,
the first generation, PSO's steps on the keep-ratio ladder, and per algorithm: the same seed gives the same
search and the state round-trips through JSON (what resume relies on). Fitness here is synthetic;
tests/test_search.py runs whole searches on LeNet-5."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgekit.search import Config
from edgekit.search.algorithm import initial_population, snap
from edgekit.search.ga import (
    GeneticAlgorithm,
    elites,
    mutate,
    one_point_crossover,
    step_mutate,
    tournament,
    uniform_crossover,
)
from edgekit.search.pso import ParticleSwarm, pso_step
from edgekit.search.random_search import RandomSearch
from edgekit.search.space import keep_levels

LEVELS = keep_levels(0.3, 0.05)


def _algo(cls, seed=0, n_genes=5, **cfg):
    return cls(LEVELS, n_genes, Config(target_macs=0.5, **{"population": 8, **cfg}), np.random.default_rng(seed))


def _run(algo, generations, score):
    """ask/tell for `generations` with a synthetic fitness; returns every population asked."""
    asked = []
    for _ in range(generations):
        pop = algo.ask()
        asked.append(pop)
        algo.tell([score(g) for g in pop])
    return asked


def _synthetic(genes) -> float:
    """Feasible (the proxy: more kept channels) while the mean level stays <= 6, else minus the excess."""
    excess = float(np.mean(genes)) - 6
    return float(np.sum(genes)) / 100 if excess <= 0 else -excess


# --- GA operators ---------------------------------------------------------------------------------


def test_uniform_crossover_mixes_both_parents_genes():
    rng = np.random.default_rng(0)
    a, b = np.zeros(64, dtype=np.int64), np.full(64, 9, dtype=np.int64)
    child = uniform_crossover(rng, a, b)
    assert set(child.tolist()) == {0, 9}  # every gene from a parent, both parents present
    assert 16 < int((child == 0).sum()) < 48


def test_one_point_crossover_is_a_prefix_and_a_suffix():
    rng = np.random.default_rng(1)
    a, b = np.arange(10), np.arange(10) + 100
    for _ in range(20):
        child = one_point_crossover(rng, a, b)
        cut = int(np.argmax(child >= 100))
        assert 1 <= cut <= 9
        assert child[:cut].tolist() == a[:cut].tolist() and child[cut:].tolist() == b[cut:].tolist()


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5, 1.0])
def test_mutation_rate_is_respected(rate):
    genes = np.full(20_000, 3, dtype=np.int64)
    out = mutate(np.random.default_rng(0), genes, rate, len(LEVELS))
    changed = float((out != genes).mean())
    assert abs(changed - rate) < 0.015  # a mutated gene always moves to another level
    assert out.min() >= 0 and out.max() < len(LEVELS)


def test_step_mutation_moves_a_gene_one_level_and_stays_on_the_ladder():
    top = len(LEVELS) - 1
    genes = np.array([0, top, 3] * 4000, dtype=np.int64)
    out = step_mutate(np.random.default_rng(0), genes, 0.5, len(LEVELS))
    moved = out != genes
    assert abs(float(moved.mean()) - 0.5) < 0.02 and np.abs(out - genes).max() == 1
    assert out.min() >= 0 and out.max() == top  # the ends step inward
    middle = genes == 3
    assert 0.4 < float((out[middle & moved] == 4).mean()) < 0.6  # up and down alike


def test_tournament_and_elites_pick_the_fittest():
    fitness = np.array([0.1, 0.9, -0.5, 0.4, 0.9])
    assert elites(fitness, 3).tolist() == [1, 4, 3]
    # a tournament of the whole population (without replacement) is the best individual
    assert tournament(np.random.default_rng(0), fitness, 5) in (1, 4)


def test_elitism_keeps_the_best_candidate():
    ga = _algo(GeneticAlgorithm, elite=2, mutation_rate=1.0, crossover_rate=1.0)
    pop = ga.ask()
    fitness = np.linspace(0, 0.7, len(pop))
    fitness[5] = 0.99
    ga.tell(fitness)
    nxt = ga.ask()
    assert nxt[0].tolist() == pop[5].tolist() and nxt[1].tolist() == pop[7].tolist()
    assert ga.best_genes is not None and ga.best_genes.tolist() == pop[5].tolist()


def test_first_generation_holds_uniform_candidates_from_the_unpruned_one_down():
    pop = initial_population(np.random.default_rng(0), 6, len(LEVELS), 10, 4)
    top = len(LEVELS) - 1
    assert pop[0].tolist() == [top] * 6 and pop[3].tolist() == [0] * 6
    assert all(len(set(row.tolist())) == 1 for row in pop[:4]) and pop.shape == (10, 6)


# --- PSO ------------------------------------------------------------------------------------------


def test_pso_step_keeps_positions_in_bounds():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.3, 1.0, (50, 7))
    v = rng.uniform(-5, 5, (50, 7))  # far beyond the range
    personal, best = rng.uniform(0.3, 1.0, (50, 7)), np.full((1, 7), 0.3)
    for _ in range(10):
        x, v = pso_step(rng, x, v, personal, best, (0.9, 2.0, 2.0), 0.2, (0.3, 1.0))
        assert x.min() >= 0.3 and x.max() <= 1.0
        assert np.abs(v).max() <= 0.2 + 1e-12


def test_pso_proposes_positions_snapped_to_the_ladder():
    pso = _algo(ParticleSwarm, max_velocity=1.0, inertia=1.5)
    for pop in _run(pso, 6, lambda g: float(np.random.default_rng(int(g.sum())).random()))[1:]:
        assert pop.min() >= 0 and pop.max() < len(LEVELS)
    levels = np.asarray(LEVELS)
    assert pso.x.min() >= levels[0] and pso.x.max() <= levels[-1]
    nxt = pso.ask()
    assert nxt.tolist() == np.abs(pso.x[..., None] - levels).argmin(-1).tolist()  # the nearest level
    assert snap(np.array([0.3, 0.324, 0.326, 1.0]), levels).tolist() == [0, 0, 1, len(LEVELS) - 1]


def test_pso_moves_towards_the_best():
    pso = _algo(ParticleSwarm)
    _run(pso, 8, _synthetic)
    assert pso.best_fitness > 0 and pso.best_genes is not None
    assert float(np.mean(pso.best_genes)) <= 6


# --- determinism and state ------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [GeneticAlgorithm, ParticleSwarm, RandomSearch])
def test_same_seed_same_search(cls):
    a, b, c = _run(_algo(cls, 3), 5, _synthetic), _run(_algo(cls, 3), 5, _synthetic), _run(_algo(cls, 4), 5, _synthetic)
    assert [p.tolist() for p in a] == [p.tolist() for p in b]
    assert [p.tolist() for p in a] != [p.tolist() for p in c]


@pytest.mark.parametrize("cls", [GeneticAlgorithm, ParticleSwarm])
def test_state_round_trips_through_json(cls):
    straight = _algo(cls)
    _run(straight, 5, _synthetic)
    first = _algo(cls)
    _run(first, 2, _synthetic)
    resumed = _algo(cls, seed=99)  # its own RNG is replaced by the saved one
    resumed.restore(json.loads(json.dumps(first.state())))
    _run(resumed, 3, _synthetic)
    assert resumed.state() == straight.state()
