"""Accuracy gates: after each stage that makes a deliverable, its top-1 on the validation split is
measured and compared with the baseline (`max_drop`, overall) and with the stage's input model
(`stage_max_drop`, per stage). A stage past a gate is marked failed; later stages do not run unless
`keep_going`; the report names the artifact to ship: the fastest one (measured p50, or else the most
compressed) whose gates passed.

The pruned model before its fine-tune is an intermediate, judged only by stage_max_drop["prune"]."""
from __future__ import annotations

from dataclasses import dataclass, field

from edgekit.artifact import Artifact, ModelEntry
from edgekit.config import ranged
from edgekit.errors import EdgekitError

# Stages whose new entries are deliverables judged by the overall gate.
JUDGED = ("train", "distill", "export", "quantize")


@dataclass
class GateConfig:
    """`max_drop`: largest top-1 drop in points of any deliverable against the baseline (null = no
    overall gate). `stage_max_drop`: per stage, the largest drop against the stage's input model, e.g.
    {quantize: 0.5}. `keep_going`: run later stages after a failed gate. `images`: validation images
    the gates measure on (0 = all)."""

    max_drop: float | None = ranged(None, 0.0, 100.0)
    stage_max_drop: dict = field(default_factory=dict)
    keep_going: bool = False
    images: int = ranged(0, 0, 10_000_000)

    def __post_init__(self):
        from edgekit.stages import ORDER

        names = [s.NAME for s in ORDER]
        for stage, limit in self.stage_max_drop.items():
            if stage not in names:
                raise EdgekitError(f"gate.stage_max_drop names unknown stage {stage!r}: use one of {', '.join(names)}")
            if not isinstance(limit, (int, float)) or isinstance(limit, bool) or limit < 0:
                raise EdgekitError(f"gate.stage_max_drop.{stage} = {limit!r} is not allowed: give a drop in points >= 0, e.g. 1.0")

    @property
    def active(self) -> bool:
        return self.max_drop is not None or bool(self.stage_max_drop)


class GateFailed(EdgekitError):
    """The run finished (or stopped) with a failed accuracy gate: not bad input, so exit code 1."""

    exit_code = 1


def top1(entry: ModelEntry, val: tuple) -> float:
    """Top-1 of `entry` on `val` (normalized images, labels: edgekit.stages.validate.val_arrays)."""
    from edgekit.backends import evaluate
    from edgekit.stages.validate import runner_for

    return float(evaluate(runner_for(entry, 1), *val)["top1"])


def _input_of(stage: str, entry: ModelEntry, before: list[ModelEntry]) -> ModelEntry | None:
    """The model a stage started from: the latest earlier entry of the same format, or for export and
    quantize the torch model / fp32 ONNX they convert."""
    wanted = {"export": "torch", "quantize": "onnx"}.get(stage, entry.format)
    candidates = [e for e in before if e.format == wanted and e.precision == "fp32"]
    return candidates[-1] if candidates else None


def check(stage: str, art: Artifact, before: list[str], cfg: GateConfig, ctx) -> dict | None:
    """Measure the stage's new deliverables and judge them; None when no gate applies to this stage."""
    if not cfg.active:
        return None
    new = [e for n, e in art.entries.items() if n not in before and e.format in ("torch", "onnx")]
    judged_overall = cfg.max_drop is not None and stage in JUDGED
    stage_limit = cfg.stage_max_drop.get(stage)
    if not new or not (judged_overall or stage_limit is not None):
        return None
    from edgekit.stages.validate import val_arrays

    val = val_arrays(ctx, cfg.images)  # once per check, shared by every model it measures
    scores = art.info.setdefault("gate_top1", {})
    base = art.entries.get("baseline")
    if base is not None and "baseline" not in scores:
        scores["baseline"] = top1(base, val)
    earlier = [art.entries[n] for n in before]
    results, failures = {}, []
    for entry in new:
        if entry.name == "baseline.onnx":  # the baseline in another runtime, not a compression step
            continue
        score = scores[entry.name] = top1(entry, val)
        row = {"top1": round(score, 4)}
        if judged_overall and entry.name != "baseline":
            row["drop_vs_baseline"] = round((scores["baseline"] - score) * 100, 2)
            if row["drop_vs_baseline"] > cfg.max_drop:
                failures.append(f"{entry.name} is {row['drop_vs_baseline']:.2f} points below the baseline (gate.max_drop {cfg.max_drop})")
        source = _input_of(stage, entry, earlier)
        if stage_limit is not None and source is not None:
            ref = scores.get(source.name)
            if ref is None:
                ref = scores[source.name] = top1(source, val)
            row["input"] = source.name
            row["drop_vs_input"] = round((ref - score) * 100, 2)
            if row["drop_vs_input"] > stage_limit:
                failures.append(f"{entry.name} is {row['drop_vs_input']:.2f} points below {source.name} (gate.stage_max_drop.{stage} {stage_limit})")
        results[entry.name] = {**row, "passed": not any(f.startswith(f"{entry.name} ") for f in failures)}
    if not results:
        return None
    art.info.setdefault("gate_results", {}).update(results)
    return {"images": cfg.images or len(ctx.data.val), "results": results, "failed": "; ".join(failures) or None}


def ship(art: Artifact) -> dict | None:
    """The artifact to ship: of those whose gates passed, the fastest measured at batch 1, or the last
    made (the most compressed) when validate did not run."""
    passed = [n for n, r in art.info.get("gate_results", {}).items() if r["passed"]]
    if not passed:
        return None
    rows = {r["artifact"]: r for r in art.info.get("results", [])}
    timed = [n for n in passed if n in rows]
    if timed:
        best = min(timed, key=lambda n: rows[n]["latency_ms"]["p50"])
        return {"artifact": best, "rule": "the fastest (p50 at batch 1) of the artifacts that passed their gates"}
    return {"artifact": passed[-1], "rule": "the last made (most compressed) of the artifacts that passed their gates; validate did not run"}
