"""The compression search (edgekit.search): the space, the evaluator's cache, the Pareto front, targets,
resume, the fill, and a small end-to-end search on LeNet-5 and the shipped Fashion-MNIST slice whose
chosen layer_ratios reproduce its architecture through the prune stage. Latency is measured but only its
structure is asserted (timing thresholds do not belong in unit tests). The algorithms' operators are in
tests/test_search_operators.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

import edgekit
from conftest import SLICE
from edgekit.artifact import Artifact, Role
from edgekit.data import DataConfig, load_data
from edgekit.data.transforms import normalize
from edgekit.errors import EdgekitError
from edgekit.metrics import count_macs, count_params
from edgekit.search import Config, pareto_front, run_search
from edgekit.search.latency import LatencyMeter
from edgekit.search.proxy import Proxy
from edgekit.search.space import PruneSettings, build_space, keep_levels, kept_channels

SIZE = (1, 28, 28)
LEVELS = keep_levels(0.3, 0.05)
# a fast search: no latency unless a test asks, few proxy images, a short finalist check
FAST = dict(population=4, proxy_images=200, bn_images=100, finalists=1, measure_latency=False)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data():
    return load_data(DataConfig(root=str(SLICE)))


@pytest.fixture(scope="module")
def lenet(data):
    """LeNet-5 trained two epochs on the slice: enough for the proxy to tell candidates apart."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the function-scoped one_thread
    torch.manual_seed(0)
    model = edgekit.create_model("lenet5", num_classes=10, in_chans=1, small_input=True)
    opt = torch.optim.AdamW(model.parameters(), 3e-3)
    x, y = normalize(data.train.images, data.mean, data.std), data.train.labels
    gen = torch.Generator().manual_seed(0)
    for _ in range(2):
        perm = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), 64):
            idx = perm[i : i + 64]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    torch.set_num_threads(before)
    return model.eval()


def _widths(model: nn.Module) -> dict[str, int]:
    return {
        n: m.out_channels if isinstance(m, nn.Conv2d) else m.out_features
        for n, m in model.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    }


# --- space and evaluator --------------------------------------------------------------------------


def test_kept_channels_rounds_to_the_nearest_multiple_and_keeps_the_floor():
    assert kept_channels(120, 0.5, 8, 0.9) == 64  # int(60) -> 64 (halves round up)
    assert kept_channels(40, 0.3, 8, 0.9) == 32 and kept_channels(72, 0.3, 8, 0.9) == 48  # 28 -> 32, 50 -> 48
    assert kept_channels(16, 0.3, 8, 0.9) == 8  # 11 -> 8
    assert kept_channels(6, 0.1, 8, 0.9) == 6  # int(5.4) = 5 -> 8, capped at 6
    assert kept_channels(64, 0.9, 8, 0.9) == 8  # int(6.4) = 6 -> 8
    assert kept_channels(84, 0.0, 8, 0.9) == 84 and kept_channels(84, 0.05, 1, 0.9) == 79


@pytest.mark.parametrize(
    "name,kwargs", [("lenet5", {}), ("mobilenet_v3_small", {"width_mult": 0.5})], ids=["lenet5", "mnv3"]
)
def test_space_predicts_the_pruners_widths(name, kwargs, data):
    """The cache key (widths computed without pruning) is what the pruner really builds."""
    from edgekit.search.evaluator import Evaluator

    torch.manual_seed(0)
    model = edgekit.create_model(name, num_classes=10, in_chans=1, small_input=True, **kwargs).eval()
    settings = PruneSettings(round_to=8)
    space = build_space(model, SIZE, settings, LEVELS)
    assert space.n_genes > 0
    ev = Evaluator(model, space, settings, SIZE, Proxy(data, 50, 50, 50, 0), None)
    rng = np.random.default_rng(0)
    for genes in [
        space.top,
        np.zeros(space.n_genes, dtype=np.int64),
        *rng.integers(0, len(LEVELS), (3, space.n_genes)),
    ]:
        widths = _widths(ev.pruned(genes, prepare=False))
        predicted = space.widths(genes)
        assert all(widths[m] == w for g, w in zip(space.groups, predicted, strict=True) for m in g.modules)


def test_evaluator_caches_by_architecture(lenet, data):
    from edgekit.search.evaluator import Evaluator

    settings = PruneSettings(round_to=8)
    space = build_space(lenet, SIZE, settings, LEVELS)
    c3 = next(i for i, g in enumerate(space.groups) if g.modules == ("c3",))
    assert [g.modules for g in space.groups] == [("c1",), ("c3",), ("c5",), ("fc1",)]
    assert not space.groups[0].searched  # 6 channels: round_to 8 cannot narrow it
    ev = Evaluator(lenet, space, settings, SIZE, Proxy(data, 100, 100, 100, 0), LatencyMeter(SIZE, 0.01, 0, 3))
    genes = space.top.copy()
    genes[space.searched.index(c3)] = LEVELS.index(0.5)
    first = ev(genes)
    assert ev.evaluations == 1 and ev.hits == 0
    assert first.latency_ms is not None and first.latency_ms > 0 and 0 <= first.proxy_top1 <= 1
    assert first.widths[c3] == 8 and first.macs < ev.base_macs and first.params == count_params(ev.pruned(genes))
    again = genes.copy()
    again[space.searched.index(c3)] = LEVELS.index(0.55)  # int(16 * 0.55) = 8 as well: the same architecture
    assert ev(again) is first and ev(genes) is first
    assert ev.evaluations == 1 and ev.hits == 2


def test_pareto_front_on_given_points():
    # (cost, accuracy): lower cost and higher accuracy win
    points = [(1.0, 0.5), (2.0, 0.7), (1.5, 0.4), (3.0, 0.7), (2.0, 0.7), (0.5, 0.2), (2.5, 0.9), (0.5, 0.1)]
    assert pareto_front(points) == [5, 0, 1, 4, 6]
    assert pareto_front([]) == []


def test_chart_shows_points_front_uniform_chosen_and_target():
    from edgekit.search.chart import front_png, front_svg

    points = [(1.0, 0.5), (2.0, 0.7), (1.5, 0.4)]
    args = (points, pareto_front(points), "latency_ms", 1.8, [(1.5, 0.4), (2.0, 0.7)], (1.0, 0.5))
    svg = front_svg(*args)
    assert svg.startswith("<svg") and "</svg>" in svg
    for legend in ("evaluated", "Pareto front", "uniform ratio", "chosen", "target", "p50 latency"):
        assert legend in svg
    assert front_svg(*args) == svg  # reproducible bytes (no date, fixed hash salt)
    assert front_png(*args)[:8] == b"\x89PNG\r\n\x1a\n"


def test_config_needs_a_reachable_target(lenet, data, tmp_path):
    with pytest.raises(EdgekitError, match="give a target"):
        run_search(lenet, data, out_dir=tmp_path, **FAST)
    # c1 (6 channels) cannot narrow at round_to 8: under 0.59 of LeNet's MACs is out of reach
    with pytest.raises(EdgekitError, match=r"target_macs 0.3 is out of reach.*>= 0\.5"):
        run_search(lenet, data, target_macs=0.3, out_dir=tmp_path, **FAST)
    with pytest.raises(EdgekitError, match="elite"):
        Config(population=2, elite=2)
    with pytest.raises(EdgekitError, match="both set: keep one"):
        run_search(lenet, data, target_latency_ms=1.0, target_latency_ratio=0.8, out_dir=tmp_path, **FAST)
    with pytest.raises(EdgekitError, match="latency_reference: true"):
        Config(target_latency_ratio=0.8, latency_reference=False).check_target()


def test_a_latency_ratio_target_is_applied_to_the_searchs_own_timing_of_the_unpruned_model(lenet, data, tmp_path):
    timing = dict(latency_window_s=0.01, latency_warmup_s=0, latency_min_runs=3, reference_latency_s=0.05)
    res = run_search(
        lenet, data, target_latency_ratio=0.95, budget_evals=6, out_dir=tmp_path, final_latency_s=0.01,
        **{**FAST, "measure_latency": None, **timing},
    )  # fmt: skip
    result = res.data
    reference = result["latency"]["reference_ms"]
    assert result["target"] == {"target_latency_ms": round(0.95 * reference, 4)} and result["axis"] == "latency_ms"
    assert all(r["latency_ms"] is not None for r in result["evaluated"])  # a ratio target measures latency


def test_config_builds_from_a_recipe_section():
    """What the run layer will do with a `search:` section: strict keys, Literal choices, ranges."""
    from edgekit.config import ConfigError, build

    cfg = build(Config, {"algorithm": "pso", "target_latency_ms": 2, "budget_evals": 40}, "search")
    assert cfg.algorithm == "pso" and cfg.target_latency_ms == 2.0 and cfg.measures_latency
    with pytest.raises(ConfigError, match=r"algorithm = 'cma' is not allowed.*min_keep = 0.0 is out of range"):
        build(Config, {"algorithm": "cma", "min_keep": 0}, "search")


# --- searches on LeNet-5 --------------------------------------------------------------------------


def _strip(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def test_same_seed_and_budget_give_the_same_result(lenet, data, tmp_path):
    runs = [
        run_search(lenet, data, target_macs=0.75, algorithm="ga", budget_evals=8, seed=s, out_dir=tmp_path / d, **FAST)
        for s, d in ((5, "a"), (5, "b"), (6, "c"))
    ]
    a, b, c = (_strip(r.data["evaluated"]) for r in runs)
    assert a == b and runs[0].chosen is not None
    assert runs[0].layer_ratios == runs[1].layer_ratios
    assert a != c  # another seed searches elsewhere


@pytest.mark.parametrize("algorithm", ["ga", "pso"])
def test_resume_continues_exactly(algorithm, lenet, data, tmp_path):
    kw = dict(target_macs=0.75, algorithm=algorithm, budget_evals=100, seed=1, stall_generations=100, **FAST)
    straight = run_search(lenet, data, out_dir=tmp_path / "straight", max_generations=4, **kw)
    run_search(lenet, data, out_dir=tmp_path / "halves", max_generations=2, **kw)
    resumed = run_search(lenet, data, out_dir=tmp_path / "halves", max_generations=4, resume=True, **kw)
    assert resumed.generations == straight.generations == 4
    s_state = json.loads((tmp_path / "straight" / "search_state.json").read_text())
    r_state = json.loads((tmp_path / "halves" / "search_state.json").read_text())
    assert r_state["algorithm"] == s_state["algorithm"]  # population, velocities, bests, RNG state
    assert _strip(r_state["records"]) == _strip(s_state["records"])
    assert [h["evaluations"] for h in r_state["progress"]["history"]] == [
        h["evaluations"] for h in s_state["progress"]["history"]
    ]
    assert resumed.layer_ratios == straight.layer_ratios
    with pytest.raises(EdgekitError, match="other settings seed"):
        run_search(lenet, data, out_dir=tmp_path / "halves", resume=True, **{**kw, "seed": 2})


def test_search_meets_the_macs_target_and_its_recipe_reproduces_the_architecture(lenet, data, tmp_path):
    from edgekit.recipe import from_dict, read_yaml
    from edgekit.stages import prune
    from edgekit.stages.context import Context

    base = {"model": {"name": "lenet5"}, "prune": {"steps": 2, "finetune_batches": 2, "batch_size": 32}}
    timing = dict(latency_window_s=0.01, latency_warmup_s=0, latency_min_runs=3, reference_latency_s=0.01)
    settings = {**FAST, "measure_latency": True, **timing}
    res = run_search(
        lenet, data, target_macs=0.7, algorithm="ga", budget_evals=10, seed=0, out_dir=tmp_path, base_recipe=base,
        final_latency_s=0.01, **settings,
    )  # fmt: skip
    chosen = res.chosen
    assert chosen is not None and chosen["confirmed"]
    assert chosen["macs_fraction"] <= 0.7 and chosen["macs"] <= 0.7 * count_macs(lenet, SIZE)
    assert chosen["latency_ms"] > 0 and chosen["final_latency_ms"] > 0 and 0 <= chosen["val_top1"] <= 1
    assert 0 < res.evaluations <= 10 and res.stopped_by in ("budget_evals", "stalled")

    # the written files: result, recipe, chart
    assert res.result_path is not None and res.recipe_path is not None
    result = json.loads(res.result_path.read_text())
    assert result["algorithm"] == "ga" and result["seed"] == 0 and result["evaluations"] == res.evaluations
    assert result["front"] and all(r in result["evaluated"] for r in result["front"])
    assert {"seconds", "evaluations", "cache_hits"} <= set(result["search_cost"])
    assert result["baseline"]["macs_fraction"] == 1.0 and result["uniform"]
    assert result["latency"]["reference_ms"] > 0  # timed against the unpruned model, interleaved
    assert res.chart_path is not None and res.chart_path.read_text().startswith("<svg")
    tree = read_yaml(res.recipe_path)
    recipe = from_dict(tree, "search recipe")  # a recipe edgekit run accepts
    assert recipe.model.name == "lenet5" and recipe.prune.steps == 2 and recipe.prune.scope == "uniform"
    assert recipe.prune.layer_ratios == chosen["layer_ratios"] and recipe.prune.target_macs is None

    # through the prune stage as `edgekit run` runs it: not skipped, the same channel counts
    art = Artifact(tmp_path)
    assert prune.skip(art, recipe.prune, None) is None and recipe.prune.ratio == 0
    art.add(Role.BASELINE, tmp_path / "b.pt", count_params(lenet), count_macs(lenet, SIZE), module=lenet)
    metrics = prune.run(art, recipe.prune, Context(recipe, data, tmp_path))
    staged = art[Role.PRUNED].module
    assert staged is not None and metrics["macs_after"] == chosen["macs"]
    space = result["space"]["groups"]
    assert all(_widths(staged)[m] == w for g, w in zip(space, chosen["widths"], strict=True) for m in g["modules"])


class _LineSpace:
    """A space whose genes are their own widths, ten levels up to the unpruned one."""

    top = np.full(3, 10, dtype=np.int64)

    def widths(self, genes):
        return tuple(int(g) for g in genes)


class _CountingEvaluator:
    """MACs fraction = mean gene / 10; the proxy from `proxy(genes)`; every call recorded."""

    def __init__(self, proxy):
        self.proxy, self.calls = proxy, []

    def __call__(self, genes):
        from edgekit.search.record import Record

        self.calls.append([int(g) for g in genes])
        frac = float(np.mean(genes)) / 10
        return Record(len(self.calls), [int(g) for g in genes], [], list(genes), 0, frac, 0, self.proxy(genes))


def test_fill_grows_the_chosen_candidate_to_the_target_and_keeps_it_when_the_proxy_ranks_growth_lower():
    from edgekit.search.fill import aim, fill, grown
    from edgekit.search.objective import Objective
    from edgekit.search.record import Record

    top = np.full(3, 10)
    assert grown([2, 4, 10], top, 0.0).tolist() == [2, 4, 10] and grown([2, 4, 10], top, 1.0).tolist() == [10] * 3
    assert grown([2, 4, 10], top, 0.5).tolist() == [6, 7, 10]  # the same fraction of each group's remaining levels

    start = Record(0, [2, 2, 2], [], [2, 2, 2], 0, 0.2, 0, 0.5)
    objective = Objective(target_macs=0.6)
    ev = _CountingEvaluator(lambda g: 0.5 + float(np.mean(g)) / 100)  # larger ranks higher
    best, info = fill(ev, objective, _LineSpace(), start, steps=5, margin=0.02)
    assert best.genes == [6, 6, 6] and best.macs_fraction == 0.6  # the largest grown candidate meeting 0.6
    assert info["from"] == 0 and info["to"] == best.index and len(ev.calls) <= 5
    assert all(not t["feasible"] for t in info["tried"] if t["macs_fraction"] > 0.6)

    ev = _CountingEvaluator(lambda g: 0.5 - float(np.mean(g)) / 100)  # the proxy ranks every grown one lower
    best, info = fill(ev, objective, _LineSpace(), start, steps=5, margin=0.02)
    assert best is start and info["to"] == 0 and ev.calls

    latency = Objective(target_latency_ms=1.0)
    rec = Record(0, [1], [], [1], 0, 0.5, 0, 0.5, latency_ms=0.99)
    assert latency.feasible(rec) and not aim(latency, 0.02).feasible(rec)  # aims under


def test_search_fills_the_macs_target_it_left_unused(lenet, data, tmp_path):
    kw = dict(target_macs=0.7, algorithm="random", budget_evals=6, seed=3, **FAST)
    plain = run_search(lenet, data, out_dir=tmp_path / "plain", fill_steps=0, **kw)
    filled = run_search(lenet, data, out_dir=tmp_path / "filled", fill_steps=5, **kw)
    assert plain.chosen is not None and filled.chosen is not None
    assert plain.data["fill"] is None and filled.data["fill"]["evaluations"] >= 1
    assert _strip(plain.data["evaluated"]) == _strip(filled.data["evaluated"])  # the fill is counted apart
    assert filled.evaluations == plain.evaluations
    assert plain.chosen["macs_fraction"] <= filled.chosen["macs_fraction"] <= 0.7
    assert filled.chosen["proxy_top1"] >= plain.chosen["proxy_top1"]
    if filled.chosen["index"] != plain.chosen["index"]:
        assert filled.chosen["grown_from"] == plain.chosen["index"] and filled.chosen["confirmed"]
    recipe = json.loads(filled.result_path.read_text())
    assert recipe["chosen"]["layer_ratios"] == filled.layer_ratios
