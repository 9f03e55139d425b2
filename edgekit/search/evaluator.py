"""Evaluating a candidate: prune a copy of the trained model to it (edgekit's pruner, one step, the
candidate as layer_ratios), count MACs, measure latency (when asked), recalibrate and score the proxy.
Results are cached by the candidate's channel widths, so candidates that round to the same
architecture, and every re-proposed one (GA elites, converged particles), cost nothing."""

from __future__ import annotations

import copy
import time

from torch import nn

from edgekit.metrics import count_macs, count_params
from edgekit.pruning.iterative import prune_copy
from edgekit.search.latency import LatencyMeter
from edgekit.search.proxy import Proxy
from edgekit.search.record import Record
from edgekit.search.space import Genes, PruneSettings, Space


class Evaluator:
    def __init__(
        self,
        model: nn.Module,
        space: Space,
        settings: PruneSettings,
        input_size: tuple[int, ...],
        proxy: Proxy,
        meter: LatencyMeter | None,
    ):
        self.model, self.space, self.settings, self.input_size = model, space, settings, input_size
        self.proxy, self.meter = proxy, meter
        self.base_macs = count_macs(model, input_size)
        self.cache: dict[tuple[int, ...], Record] = {}
        self.hits = 0
        self.cost = {"prune_s": 0.0, "latency_s": 0.0, "proxy_s": 0.0}

    @property
    def evaluations(self) -> int:
        return len(self.cache)

    def cached(self, genes: Genes) -> Record | None:
        return self.cache.get(self.space.widths(genes))

    def pruned(self, genes: Genes, prepare: bool = True) -> nn.Module:
        """A pruned copy of the model for `genes` (BatchNorm recalibrated unless `prepare` is False)."""
        cfg = copy.copy(self.settings)
        cfg.layer_ratios = self.space.layer_ratios(genes)
        # ratio 0: every group is named in layer_ratios, so the uniform ratio reaches none of them
        model, _ = prune_copy(self.model, cfg, 0.0, self.input_size, self.proxy.fit_data, steps=1, finetune_batches=0)
        return self.proxy.prepare(model) if prepare else model

    def __call__(self, genes: Genes) -> Record:
        key = self.space.widths(genes)
        if key in self.cache:
            self.hits += 1
            return self.cache[key]
        t0 = time.perf_counter()
        model = self.pruned(genes, prepare=False)
        prune_s = time.perf_counter() - t0
        timed = self.timed(model)  # before the proxy recalibrates (and may fine-tune) it in place
        return self.add(genes, self.score(genes, model, prune_s), timed)

    def score(self, genes: Genes, model: nn.Module | None = None, prune_s: float = 0.0) -> dict:
        """What a candidate's evaluation computes besides latency: MACs, parameters, the proxy's top-1 and
        the seconds they took (a rank of a distributed search computes this for its share)."""
        t0 = time.perf_counter()
        model = self.pruned(genes, prepare=False) if model is None else model
        macs, params = count_macs(model, self.input_size), count_params(model)
        t1 = time.perf_counter()
        top1 = self.proxy.top1(self.proxy.prepare(model))
        return {
            "macs": macs,
            "params": params,
            "proxy_top1": top1,
            "prune_s": prune_s + t1 - t0,
            "proxy_s": time.perf_counter() - t1,
        }

    def timed(self, model: nn.Module) -> tuple[float | None, float]:
        """(latency ms or None without a meter, seconds the timing took)."""
        if self.meter is None:
            return None, 0.0
        t0 = time.perf_counter()
        ms = round(self.meter(model), 4)
        return ms, time.perf_counter() - t0

    def add(self, genes: Genes, scored: dict, timed: tuple[float | None, float] | None = None) -> Record:
        """Record a scored candidate; `timed` None: prune it again here to time it (a share scored it)."""
        if timed is None:
            timed = self.timed(self.pruned(genes, prepare=False)) if self.meter is not None else (None, 0.0)
        ms, latency_s = timed
        for k, dt in (("prune_s", scored["prune_s"]), ("latency_s", latency_s), ("proxy_s", scored["proxy_s"])):
            self.cost[k] += dt
        key = self.space.widths(genes)
        levels = [int(g) for g in genes]
        rec = Record(
            index=len(self.cache),
            genes=levels,
            keep=self.space.keep(levels),
            widths=list(key),
            macs=scored["macs"],
            macs_fraction=round(scored["macs"] / self.base_macs, 6),
            params=scored["params"],
            proxy_top1=scored["proxy_top1"],
            latency_ms=ms,
            seconds=round(scored["prune_s"] + latency_s + scored["proxy_s"], 4),
        )
        self.cache[key] = rec
        return rec

    def portable(self) -> Evaluator:
        """A copy for the other ranks of a distributed search: no latency meter (rank 0 times every
        candidate), no records."""
        out = copy.copy(self)
        out.meter, out.cache, out.hits = None, {}, 0
        out.cost = dict.fromkeys(self.cost, 0.0)
        return out

    def restore(self, records: list[dict], hits: int, cost: dict[str, float]) -> None:
        self.cache = {tuple(r["widths"]): Record.from_dict(r) for r in records}
        self.hits, self.cost = hits, dict(cost)

    def records(self) -> list[Record]:
        return sorted(self.cache.values(), key=lambda r: r.index)
