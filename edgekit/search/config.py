"""The search's settings as one strict dataclass: what `run_search`'s keywords fill in, and what a
`search:` recipe section validates with edgekit.config (the search stage, edgekit/stages/search.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from edgekit.config import ranged
from edgekit.errors import EdgekitError
from edgekit.export.onnx_file import DEFAULT_OPSET

Algorithm = Literal["ga", "pso", "random"]


@dataclass
class Config:
    """Target (at least one): `target_latency_ms` (ONNX Runtime CPU p50, batch 1, 1 thread) or
    `target_latency_ratio` (that p50 as a fraction of the unpruned model's, both timed on the search's
    interleaved scale: machine-independent, e.g. 0.67 for 1.5x faster), and/or `target_macs` (fraction of
    the baseline MACs). Budget: `budget_evals` evaluations (cache hits are
    free), `budget_minutes`, `max_generations`; the search also stops after `stall_generations`
    generations that evaluated nothing new. Space: per prunable group a keep ratio from `min_keep` to 1
    in `keep_step` steps, channels rounded to the nearest multiple of `round_to` as the prune stage rounds them.
    First generation: `uniform_seeds` uniform candidates (the same ratio everywhere, the unpruned model
    first) and random ones up to `population`. GA: `elite`, `tournament` size, `crossover`
    (uniform / one_point) at `crossover_rate`, per-gene `mutation_rate` (None: 1 / genes), `mutation`
    (uniform: to any other level; step: one level up or down). PSO: `inertia`, `cognitive`, `social`,
    `max_velocity` (fraction of the keep range per step).
    Proxy: top-1 on `proxy_images` held-out training images after BatchNorm recalibration on
    `bn_images` other training images (and `finetune_batches` fine-tune batches). Latency: measured
    (`measure_latency` None: only with a latency target) over `latency_window_s` after
    `latency_warmup_s`, at least `latency_min_runs` runs (1 s: twelve MobileNetV3 candidates timed four
    times each varied by a median 8.9% of their ratio to the unpruned model with 0.3 s, up to 50% between
    repeats, and by 1.2% with 1 s, up to 18%); with `latency_reference`, in alternating
    slices with the unpruned model (timed once over `reference_latency_s`) and scaled by it, so that load
    from other processes cancels (edgekit/search/latency.py). The `finalists` best feasible candidates are
    re-timed over `final_latency_s` and scored on the validation split. Fill: the chosen candidate is
    then grown toward the unpruned model (every group by the same fraction of its remaining levels) to use
    the target's slack, by a bisection of `fill_steps` evaluations (0: off) aiming `fill_margin` under a
    latency target; it replaces the chosen one when the proxy ranks it no lower (edgekit/search/fill.py)."""

    algorithm: Algorithm = "ga"
    target_latency_ms: float | None = ranged(None, 0.0, 1e6)
    target_macs: float | None = ranged(None, 0.0, 1.0)
    target_latency_ratio: float | None = ranged(None, 0.0, 1.0)
    budget_evals: int = ranged(60, 1, 1_000_000)
    budget_minutes: float | None = ranged(None, 0.0, 1e6)
    max_generations: int | None = ranged(None, 1, 1_000_000)
    stall_generations: int = ranged(3, 1, 1000)
    seed: int = 0
    population: int = ranged(12, 2, 10_000)
    uniform_seeds: int = ranged(4, 0, 1000)
    min_keep: float = ranged(0.3, 0.01, 1.0)
    keep_step: float = ranged(0.05, 0.001, 1.0)
    round_to: int = ranged(8, 1, 256)
    importance: Literal["l2", "l1", "bn_scale", "taylor", "random"] = "l2"
    max_layer_ratio: float = ranged(0.9, 0.0, 1.0, hi_inclusive=False)
    taylor_batches: int = ranged(8, 1, 10_000)
    elite: int = ranged(2, 0, 10_000)
    tournament: int = ranged(3, 1, 10_000)
    crossover: Literal["uniform", "one_point"] = "uniform"
    crossover_rate: float = ranged(0.9, 0.0, 1.0)
    mutation_rate: float | None = ranged(None, 0.0, 1.0)
    mutation: Literal["uniform", "step"] = "uniform"
    inertia: float = ranged(0.6, 0.0, 2.0)
    cognitive: float = ranged(1.5, 0.0, 10.0)
    social: float = ranged(1.5, 0.0, 10.0)
    max_velocity: float = ranged(0.25, 0.01, 1.0)
    proxy_images: int = ranged(1000, 1, 1_000_000)
    bn_images: int = ranged(500, 0, 1_000_000)
    batch_size: int = ranged(128, 1, 65_536)
    finetune_batches: int = ranged(0, 0, 1_000_000)
    finetune_lr: float = ranged(1e-3, 0.0, 10.0)
    measure_latency: bool | None = None
    latency_window_s: float = ranged(1.0, 0.0, 60.0)
    latency_warmup_s: float = ranged(0.1, 0.0, 60.0)
    latency_min_runs: int = ranged(20, 1, 1_000_000)
    latency_reference: bool = True
    reference_latency_s: float = ranged(2.0, 0.0, 600.0)
    opset: int = ranged(DEFAULT_OPSET, 7, 30)
    finalists: int = ranged(3, 1, 100)
    final_latency_s: float = ranged(1.0, 0.0, 600.0)
    fill_steps: int = ranged(5, 0, 100)
    fill_margin: float = ranged(0.02, 0.0, 0.5)

    def __post_init__(self):
        if self.elite >= self.population:
            raise EdgekitError(
                f"search.elite = {self.elite} keeps the whole population of {self.population}: lower it below "
                "search.population"
            )

    @property
    def latency_target(self) -> bool:
        return self.target_latency_ms is not None or self.target_latency_ratio is not None

    @property
    def measures_latency(self) -> bool:
        return self.latency_target if self.measure_latency is None else self.measure_latency

    def check_target(self) -> None:
        """A search needs a target (checked at run time: the command line may give it, not the recipe)."""
        if not self.latency_target and self.target_macs is None:
            raise EdgekitError(
                "search: give a target: target_latency_ms (ONNX Runtime CPU p50, ms), target_latency_ratio (of the "
                "unpruned model's p50, e.g. 0.67) or target_macs (fraction of the baseline MACs to keep, e.g. 0.5)"
            )
        if self.target_latency_ms is not None and self.target_latency_ratio is not None:
            raise EdgekitError("search: target_latency_ms and target_latency_ratio are both set: keep one")
        if self.target_latency_ratio is not None and (self.target_latency_ratio <= 0 or not self.latency_reference):
            raise EdgekitError(
                f"search.target_latency_ratio = {self.target_latency_ratio} needs a ratio in (0, 1] and "
                "search.latency_reference: true (the unpruned model is its unit)"
            )
        if self.target_macs is not None and self.target_macs <= 0:
            raise EdgekitError(f"search.target_macs = {self.target_macs} keeps no MACs: give a fraction in (0, 1]")
        if self.target_latency_ms is not None and self.target_latency_ms <= 0:
            raise EdgekitError(f"search.target_latency_ms = {self.target_latency_ms} is not a latency: give ms > 0")
        if self.latency_target and self.measure_latency is False:
            raise EdgekitError("search.measure_latency is false but a latency target needs it: remove the setting")
