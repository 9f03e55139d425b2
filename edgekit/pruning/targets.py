"""Targets besides a ratio: search the pruning ratio that meets a MACs or a latency target.

Each probe prunes a copy of the model at one ratio with the run's criterion, scope, floor, layer
ratios and rounding (in one step, without fine-tuning: the channel counts a ratio gives barely depend
on the fine-tune, and a probe must be cheap), then measures it. The search is a bisection on the ratio
(MACs and latency fall as the ratio grows) that keeps the smallest ratio meeting the target (a MACs
search stops early once a probe meets it within 2 points). MACs fall
in steps (channel rounding), so when that ratio lands more than 2 points under a MACs target, a second
bisection gives the first k prunable layers the next-lower ratio (which missed) to close the gap. With
`steps` > 1 the chosen ratio is then pruned for real (iteratively, with fine-tunes) and measured
again; if that misses the target the ratio is raised in small increments until it meets it. Every
probe is returned, so the report shows how the ratio was chosen."""

from __future__ import annotations

import copy
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import nn

from edgekit.errors import EdgekitError
from edgekit.export.onnx_file import DEFAULT_OPSET
from edgekit.metrics import count_macs, count_params
from edgekit.pruning.iterative import prune_copy
from edgekit.zoo.contract import optional

MACS_TOLERANCE = 0.02  # stop once the kept MACs fraction is within 2 points below the target
MAX_MACS_PROBES = 14
MAX_REFINE_PROBES = 8
FINAL_BUMP = 0.01  # ratio increment when the iterative result misses the target
MAX_BUMPS = 10


@dataclass
class Probe:
    ratio: float
    macs: int
    params: int
    ms: float | None = None
    final: bool = False  # the full (iterative) pruning at the chosen ratio, not a one-step probe
    relaxed: dict[str, float] = field(default_factory=dict)  # layers searched down to a lower ratio
    model: nn.Module | None = field(default=None, repr=False)

    def record(self, base_macs: int) -> dict:
        out = {
            "ratio": round(self.ratio, 4),
            "macs": self.macs,
            "macs_fraction": round(self.macs / base_macs, 4),
            "params": self.params,
        }
        if self.ms is not None:
            out["latency_ms_p50"] = self.ms
        if self.relaxed:
            out["relaxed_layers"] = len(self.relaxed)
        if self.final:
            out["final"] = True
        return out


def max_ratio(cfg) -> float:
    """The highest ratio a search tries: uniform pruning never cuts a layer past max_layer_ratio."""
    return min(0.95, cfg.max_layer_ratio) if cfg.scope == "uniform" else 0.95


def onnx_latency_ms(model: nn.Module, input_size, seconds: float, opset: int = DEFAULT_OPSET) -> float:
    """p50 batch-1 latency of `model` exported to ONNX (edgekit's exporter at the run's opset, simplified)
    and run in ONNX Runtime on the CPU with one thread, as the validate stage times models."""
    from edgekit.backends.measure import measure_latency
    from edgekit.backends.ort import OrtRunner
    from edgekit.export import save_onnx, to_onnx

    proto = to_onnx(model, input_size, opset, True)
    with tempfile.TemporaryDirectory(prefix="edgekit-prune-") as tmp:
        path = Path(tmp) / "probe.onnx"
        save_onnx(proto, path)
        runner = OrtRunner(path, threads=1)
        x = np.random.default_rng(0).standard_normal((1, *input_size)).astype(np.float32)
        stats = measure_latency(runner, x, warmup_s=min(0.3, seconds / 4), min_runs=30, min_s=seconds)
    return float(stats["p50"])


def with_layer_ratios(cfg, extra: dict[str, float]):
    """`cfg` with `extra` per-layer ratios added (the user's own layer_ratios win)."""
    if not extra:
        return cfg
    out = copy.copy(cfg)
    out.layer_ratios = {**extra, **(cfg.layer_ratios or {})}
    return out


def prunable_layer_names(model: nn.Module, cfg) -> list[str]:
    """Conv and linear layers the pruner may cut, in model order (ignored layers and the user's
    layer_ratios left out)."""
    ignored: set[int] = set()
    for layer in optional(model, "pruning_ignored_layers", []):
        ignored.update(id(m) for m in layer.modules())
    return [
        n
        for n, m in model.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Linear)) and id(m) not in ignored and n not in (cfg.layer_ratios or {})
    ]


def _looser(cfg) -> str:
    """What lets the pruner cut deeper than this configuration did."""
    out = ["raise prune.max_layer_ratio"]
    if cfg.round_to > 1:
        out.append(f"lower prune.round_to (now {cfg.round_to})")
    if cfg.scope == "uniform":
        out.append("use prune.scope: global")
    return ", ".join(out[:-1]) + " or " + out[-1] if len(out) > 1 else out[0]


def _bisect(
    probe: Callable[[float], Probe],
    meets: Callable[[Probe], bool],
    close: Callable[[Probe], bool],
    lo: float,
    hi: float,
    best: Probe,
    first: float | None,
    max_probes: int,
    min_gap: float,
    probes: list,
) -> tuple[Probe, float]:
    """Smallest-ratio probe meeting the target in (lo, hi]; `best` is a probe at hi that meets it.
    Returns it and the highest ratio seen missing the target."""
    guess = first
    for _ in range(max_probes):
        if hi - lo < min_gap or close(best):
            break
        r = guess if guess is not None and lo < guess < hi else (lo + hi) / 2
        guess = None
        p = probe(r)
        probes.append(p)
        if meets(p):
            hi, best = r, p
        else:
            lo = r
    return best, lo


def _refine(
    probe_mixed: Callable[[dict], Probe],
    meets,
    close,
    best: Probe,
    lo: float,
    names: list[str],
    probes: list,
    max_probes: int,
) -> Probe:
    """MACs fall in steps as the ratio grows (every layer of one width loses a rounding unit at the same
    ratio), so the smallest ratio meeting the target may land far below it. Give the first k layers
    the ratio `lo` (which misses the target) and the rest `best.ratio`, and bisect on k."""
    k_meets, k_misses = 0, len(names)
    for _ in range(max_probes):
        if close(best) or k_misses - k_meets <= 1:
            break
        k = (k_meets + k_misses) // 2
        p = probe_mixed(dict.fromkeys(names[:k], lo))
        probes.append(p)
        if meets(p):
            k_meets, best = k, p
        else:
            k_misses = k
    return best


def _finalize(
    model,
    cfg,
    input_size,
    data,
    chosen: Probe,
    measure: Callable[[nn.Module, float], Probe],
    meets: Callable[[Probe], bool],
    probes: list,
    hi: float,
) -> Probe:
    """With steps > 1 (or fine-tunes), prune for real at the chosen ratio and re-check the target."""
    if cfg.steps == 1:
        return chosen
    ratio = chosen.ratio
    for _ in range(MAX_BUMPS + 1):
        pruned, _ = prune_copy(model, with_layer_ratios(cfg, chosen.relaxed), ratio, input_size, data)
        p = measure(pruned, ratio)
        p.final, p.relaxed = True, chosen.relaxed
        probes.append(p)
        if meets(p):
            return p
        if ratio >= hi:
            break
        ratio = min(hi, ratio + FINAL_BUMP)
    raise EdgekitError(
        f"prune: after {cfg.steps} steps with fine-tunes the model misses its target even at ratio {ratio:.3f} "
        f"(one-step probes met it): use prune.steps: 1 or a looser target"
    )


def search_macs(model: nn.Module, cfg, input_size, data, fraction: float) -> tuple[Probe, list[Probe]]:
    """The pruned model whose MACs are <= `fraction` of the baseline's (and within ~2 points of it)."""
    base = count_macs(model, input_size)
    target = fraction * base

    def measure(m: nn.Module, r: float) -> Probe:
        return Probe(r, count_macs(m, input_size), count_params(m), model=m)

    def probe(r: float) -> Probe:
        return measure(prune_copy(model, cfg, r, input_size, data, steps=1, finetune_batches=0)[0], r)

    def meets(p: Probe) -> bool:
        return p.macs <= target

    def close(p: Probe) -> bool:
        return p.macs >= (fraction - MACS_TOLERANCE) * base

    probes: list[Probe] = []
    if fraction >= 1:
        p = measure(prune_copy(model, cfg, 0.0, input_size, data, steps=1, finetune_batches=0)[0], 0.0)
        return p, [p]
    hi = max_ratio(cfg)
    top = probe(hi)
    probes.append(top)
    if not meets(top):
        raise EdgekitError(
            f"prune.target_macs {fraction} is out of reach: the highest ratio {hi} keeps {top.macs / base:.3f} of the "
            "baseline MACs "
            "(the classifier, ignored layers, the max_layer_ratio floor and round_to's minimum widths stay): ask for "
            "prune.target_macs >= "
            f"{math.ceil(top.macs / base * 1000) / 1000}, {_looser(cfg)}"
        )
    # MACs scale roughly with (1 - ratio)^2 under uniform pruning: start the bisection there
    chosen, lo = _bisect(probe, meets, close, 0.0, hi, top, 1 - math.sqrt(fraction), MAX_MACS_PROBES, 1e-3, probes)

    ratio = chosen.ratio

    def probe_mixed(relaxed: dict) -> Probe:
        p = measure(
            prune_copy(model, with_layer_ratios(cfg, relaxed), ratio, input_size, data, steps=1, finetune_batches=0)[0],
            ratio,
        )
        p.relaxed = relaxed
        return p

    chosen = _refine(probe_mixed, meets, close, chosen, lo, prunable_layer_names(model, cfg), probes, MAX_REFINE_PROBES)
    return _finalize(model, cfg, input_size, data, chosen, measure, meets, probes, hi), probes


def search_latency(
    model: nn.Module, cfg, input_size, data, target_ms: float, opset: int = DEFAULT_OPSET
) -> tuple[Probe, list[Probe]]:
    """The least-pruned model whose measured ONNX Runtime p50 (1 thread, batch 1) is <= `target_ms`;
    probes are exported at `opset`, as the export stage will export the result."""

    def measure(m: nn.Module, r: float) -> Probe:
        ms = onnx_latency_ms(m, input_size, cfg.latency_probe_s, opset)
        return Probe(r, count_macs(m, input_size), count_params(m), round(ms, 4), model=m)

    def probe(r: float) -> Probe:
        return measure(prune_copy(model, cfg, r, input_size, data, steps=1, finetune_batches=0)[0], r)

    def meets(p: Probe) -> bool:
        return p.ms is not None and p.ms <= target_ms

    probes: list[Probe] = []
    base = measure(prune_copy(model, cfg, 0.0, input_size, data, steps=1, finetune_batches=0)[0], 0.0)
    probes.append(base)
    if meets(base):
        return base, probes
    hi = max_ratio(cfg)
    top = probe(hi)
    probes.append(top)
    if not meets(top):
        raise EdgekitError(
            f"prune.target_latency_ms {target_ms} is out of reach: the highest ratio {hi} runs at {top.ms:.3f} ms p50 "
            f"(baseline {base.ms:.3f} ms; ONNX Runtime CPU, 1 thread, batch 1): ask for >= {top.ms:.3f} ms, "
            f"{_looser(cfg)}, "
            f"or start from a smaller model"
        )
    # latency is noisy and moves in steps: a coarse bisection (ratio gap 0.02) is enough
    chosen, _ = _bisect(probe, meets, lambda p: False, 0.0, hi, top, None, cfg.latency_probes, 0.02, probes)
    return _finalize(model, cfg, input_size, data, chosen, measure, meets, probes, hi), probes
