"""Accuracy gates: after each stage, the models it made are measured on the validation split and judged
by what their role is (edgekit.artifact.ROLES), never by the stage's name:
- a deliverable (distilled, model.onnx, model.int8.onnx, model.fp16.onnx) against the baseline, when
  `gate.enforce` is on: at most `gate.max_drop` points below it; a candidate (rewritten.onnx,
  rewritten.int8.onnx) the same way, but missing it only keeps the candidate from shipping;
- any measured model against the model it was made from (its `source` role), when
  `gate.stage_max_drop` names the stage: at most that many points below it;
- the reference models (baseline, baseline.onnx) and engines are not judged.
A stage past a gate is marked failed; later stages do not run unless `keep_going`; the report names
the artifact to ship: the fastest one (measured p50, or else the last made) whose gates passed.

`gate.max_drop` is the run's one allowed drop: the quantize stage's held-out int8 check uses it too."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgekit.artifact import ROLES, Artifact, ModelEntry, Role
from edgekit.config import ranged
from edgekit.errors import EdgekitError, StageFailed

DEFAULT_MAX_DROP = 1.0  # points of top-1
SHIPPABLE = ("deliverable", "candidate")  # judged against the baseline; the ship rule chooses among them


@dataclass
class GateConfig:
    """`max_drop`: the allowed top-1 drop in points: the int8 check's limit (quantize.check_drop) and,
    with `enforce`, the largest drop of any deliverable against the baseline on the validation split.
    `stage_max_drop`: per stage, the largest drop of what it made against the model it made it from,
    e.g. {quantize: 0.5}. `keep_going`: run later stages after a failed gate. `images`: validation
    images the gates measure on (0 = all)."""

    max_drop: float = ranged(DEFAULT_MAX_DROP, 0.0, 100.0)
    enforce: bool = False
    stage_max_drop: dict = field(default_factory=dict)
    keep_going: bool = False
    images: int = ranged(0, 0, 10_000_000)

    def __post_init__(self):
        from edgekit.stages import STAGES

        names = STAGES.names()
        for stage, limit in self.stage_max_drop.items():
            if stage not in names:
                raise EdgekitError(f"gate.stage_max_drop names unknown stage {stage!r}: use one of {', '.join(names)}")
            if not isinstance(limit, (int, float)) or isinstance(limit, bool) or limit < 0:
                raise EdgekitError(
                    f"gate.stage_max_drop.{stage} = {limit!r} is not allowed: give a drop in points >= 0, e.g. 1.0"
                )

    @property
    def active(self) -> bool:
        return self.enforce or bool(self.stage_max_drop)


class GateFailed(StageFailed):
    """The run finished (or stopped) with a failed accuracy gate: not bad input, so exit code 1."""


Top1 = Callable[[ModelEntry], float]


def measured_top1(val: tuple) -> Top1:
    """Top-1 of an entry on `val` (normalized images, labels: edgekit.data.arrays.val_arrays), the images
    split across the ranks of a distributed run."""
    from edgekit.backends.sharded import accuracies

    images, labels = val
    return lambda entry: float(accuracies([entry], images, labels, threads=1)[0]["top1"])


def check(
    stage: str, art: Artifact, before: set[Role], cfg: GateConfig, top1: Top1, images: int
) -> dict[str, Any] | None:
    """Judge the models that `stage` added (roles not in `before`); None when no gate applies.
    `top1` measures one entry; `images` is how many it measures on (for the record)."""
    if not cfg.active:
        return None
    stage_limit = cfg.stage_max_drop.get(stage)
    new = [e for r, e in art.entries.items() if r not in before and r.spec.judged in ("intermediate", *SHIPPABLE)]
    judged = [e for e in new if stage_limit is not None or (cfg.enforce and e.role.spec.judged in SHIPPABLE)]
    if not judged:
        return None
    scores = art.info.gate_top1
    base = art.entries.get(Role.BASELINE)
    if cfg.enforce and base is not None and base.name not in scores:
        scores[base.name] = top1(base)
    results, failures = {}, []
    for entry in judged:
        score = scores[entry.name] = top1(entry)
        row: dict[str, Any] = {"top1": round(score, 4)}
        failed = []
        if cfg.enforce and entry.role.spec.judged in SHIPPABLE and base is not None:
            row["drop_vs_baseline"] = round((scores[base.name] - score) * 100, 2)
            if row["drop_vs_baseline"] > cfg.max_drop:
                failed.append(
                    f"{entry.name} is {row['drop_vs_baseline']:.2f} points below the baseline (gate.max_drop "
                    f"{cfg.max_drop})"
                )
        source = art.entries.get(entry.source) if entry.source is not None else None
        if stage_limit is not None and source is not None:
            if source.name not in scores:
                scores[source.name] = top1(source)
            row["input"] = source.name
            row["drop_vs_input"] = round((scores[source.name] - score) * 100, 2)
            if row["drop_vs_input"] > stage_limit:
                failed.append(
                    f"{entry.name} is {row['drop_vs_input']:.2f} points below {source.name} "
                    f"(gate.stage_max_drop.{stage} {stage_limit})"
                )
        results[entry.name] = {**row, "passed": not failed}
        if entry.role.spec.judged == "candidate":  # an extra option: missing the gate keeps it from shipping
            if failed:
                results[entry.name]["note"] = "candidate: not shipped; " + "; ".join(failed)
        else:
            failures += failed
    art.info.gate_results.update(results)
    return {"images": images, "results": results, "failed": "; ".join(failures) or None}


def ship(art: Artifact) -> dict | None:
    """The artifact to ship: of those whose gates passed, the fastest measured at batch 1, or the last
    made (the most compressed) when validate did not run. Without gates, the fastest measured deliverable
    within gate.max_drop of the baseline on the validation split (what the report's status column says)."""
    if not art.info.gate_results:
        return _ship_ungated(art)
    passed = [n for n, r in art.info.gate_results.items() if r["passed"]]
    if not passed:
        return None
    rows = ranking_rows(art)
    timed = [n for n in passed if n in rows]
    if timed:
        best = min(timed, key=lambda n: rows[n]["latency_ms"]["p50"])
        rule = f"the fastest (p50 at batch 1{_on(art)}) of the artifacts that passed their gates"
        return {"artifact": best, "rule": rule}
    return {
        "artifact": passed[-1],
        "rule": "the last made (most compressed) of the artifacts that passed their gates; validate did not run",
    }


def within_drop(base_top1: float, top1: float, limit: float) -> bool:
    """top1 is at most `limit` points below base_top1 (rounded: a drop of exactly the limit passes despite
    float noise, 0.912 - 0.902 being 0.01000000000000001)."""
    return round((base_top1 - top1) * 100, 6) <= limit


def ranking_rows(art: Artifact) -> dict[str, dict]:
    """The validate row that ranks each artifact, by artifact name: its own row (PyTorch for torch models,
    ONNX Runtime on the CPU for ONNX files), or its OpenVINO row when the target is openvino. Rows of
    other runtimes (CUDA, TensorRT providers) inform, they do not decide."""
    rows = {r["artifact"]: r for r in art.info.results if r.get("of", r["artifact"]) == r["artifact"]}
    if art.info.target == "openvino":
        rows.update({r["of"]: r for r in art.info.results if r.get("backend") == "openvino" and "of" in r})
    return rows


def _on(art: Artifact) -> str:
    return " in OpenVINO" if art.info.target == "openvino" else ""


def _ship_ungated(art: Artifact) -> dict | None:
    rows = list(ranking_rows(art).values())
    base = next((r for r in rows if r.get("role") == Role.BASELINE.value), None)
    limit = art.info.max_drop if art.info.max_drop is not None else DEFAULT_MAX_DROP
    if base is None:
        return None
    ok = [r for r in rows if r.get("role") in DELIVERABLES and within_drop(base["top1"], r["top1"], limit)]
    if not ok:
        return None
    best = min(ok, key=lambda r: r["latency_ms"]["p50"])
    rule = (
        f"the fastest (p50 at batch 1{_on(art)}) deliverable within gate.max_drop ({limit:g} points) of the "
        "baseline; no gate ran"
    )
    return {"artifact": best.get("of", best["artifact"]), "rule": rule}


DELIVERABLES = {r.value for r, spec in ROLES.items() if spec.judged in SHIPPABLE}
