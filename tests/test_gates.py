"""The gate rules, unit by unit: which models a stage's check judges (by role, not by stage name), against
what, and what is shipped. Scores are given, not measured, so each rule is forced, never left to chance."""

from pathlib import Path

import pytest

from edgekit import gates
from edgekit.artifact import Artifact, Role
from edgekit.errors import EdgekitError
from edgekit.gates import GateConfig


def artifact(*roles: Role) -> Artifact:
    """An Artifact holding `roles` (files never touched: the scores below stand in for measurement),
    each with the source the pipeline gives it."""
    sources = {
        Role.PRUNED: Role.BASELINE,
        Role.DISTILLED: Role.PRUNED,
        Role.BASELINE_ONNX: Role.BASELINE,
        Role.ONNX: Role.DISTILLED,
        Role.INT8_ONNX: Role.ONNX,
        Role.FP16_ONNX: Role.ONNX,
        Role.INT8_ENGINE: Role.INT8_ONNX,
    }
    art = Artifact(Path("/nonexistent"))
    for role in roles:
        art.add(role, Path(f"/nonexistent/{role.spec.file}"), 1, 1, source=sources.get(role))
    return art


def scorer(top1: dict[Role, float]):
    measured = []

    def score(entry):
        measured.append(entry.role)
        return top1[entry.role]

    return score, measured


BASE = {
    Role.BASELINE: 0.90,
    Role.PRUNED: 0.70,
    Role.DISTILLED: 0.895,
    Role.BASELINE_ONNX: 0.90,
    Role.ONNX: 0.895,
    Role.INT8_ONNX: 0.88,
    Role.FP16_ONNX: 0.895,
}


def test_no_gate_measures_nothing():
    art = artifact(Role.BASELINE, Role.PRUNED)
    score, measured = scorer(BASE)
    assert gates.check("prune", art, {Role.BASELINE}, GateConfig(), score, 10) is None
    assert measured == []


def test_a_deliverable_is_judged_against_the_baseline():
    art = artifact(Role.BASELINE, Role.PRUNED, Role.DISTILLED)
    score, _ = scorer(BASE)
    verdict = gates.check(
        "distill", art, {Role.BASELINE, Role.PRUNED}, GateConfig(enforce=True, max_drop=1.0), score, 10
    )
    assert verdict["failed"] is None
    assert verdict["results"] == {"distilled": {"top1": 0.895, "drop_vs_baseline": 0.5, "passed": True}}
    verdict = gates.check(
        "distill", art, {Role.BASELINE, Role.PRUNED}, GateConfig(enforce=True, max_drop=0.4), score, 10
    )
    assert verdict["failed"] == "distilled is 0.50 points below the baseline (gate.max_drop 0.4)"
    assert art.info.gate_results["distilled"]["passed"] is False


def test_an_intermediate_is_not_judged_against_the_baseline():
    """The pruned model before its fine-tune is 20 points down: only its stage's own limit judges it."""
    art = artifact(Role.BASELINE, Role.PRUNED)
    score, measured = scorer(BASE)
    assert gates.check("prune", art, {Role.BASELINE}, GateConfig(enforce=True), score, 10) is None
    assert measured == []
    verdict = gates.check("prune", art, {Role.BASELINE}, GateConfig(stage_max_drop={"prune": 25}), score, 10)
    assert verdict["results"]["pruned"] == {"top1": 0.7, "input": "baseline", "drop_vs_input": 20.0, "passed": True}


def test_a_stage_limit_compares_with_the_models_source():
    """model.int8.onnx is judged against model.onnx (its source), whatever the stage is called."""
    art = artifact(Role.BASELINE, Role.PRUNED, Role.DISTILLED, Role.BASELINE_ONNX, Role.ONNX, Role.INT8_ONNX)
    score, _ = scorer(BASE)
    before = set(art.entries) - {Role.INT8_ONNX}
    verdict = gates.check("quantize", art, before, GateConfig(stage_max_drop={"quantize": 1.0}), score, 10)
    assert verdict["results"]["model.int8.onnx"]["input"] == "model.onnx"
    assert verdict["results"]["model.int8.onnx"]["drop_vs_input"] == 1.5
    assert verdict["failed"] == "model.int8.onnx is 1.50 points below model.onnx (gate.stage_max_drop.quantize 1.0)"


def test_reference_models_and_engines_are_not_judged():
    art = artifact(Role.BASELINE, Role.DISTILLED, Role.BASELINE_ONNX, Role.ONNX, Role.INT8_ONNX, Role.INT8_ENGINE)
    score, measured = scorer(BASE)
    before = {Role.BASELINE, Role.DISTILLED}
    verdict = gates.check("export", art, before, GateConfig(enforce=True, stage_max_drop={"export": 0.0}), score, 10)
    assert set(verdict["results"]) == {"model.onnx", "model.int8.onnx"}  # not baseline.onnx, not the engine
    assert Role.INT8_ENGINE not in measured


def test_each_model_is_measured_once_per_run():
    art = artifact(Role.BASELINE, Role.PRUNED, Role.DISTILLED)
    score, measured = scorer(BASE)
    cfg = GateConfig(enforce=True, stage_max_drop={"distill": 1.0})
    gates.check("distill", art, {Role.BASELINE, Role.PRUNED}, cfg, score, 10)
    gates.check("distill", art, {Role.BASELINE, Role.PRUNED}, cfg, score, 10)
    assert measured.count(Role.BASELINE) == 1 and measured.count(Role.PRUNED) == 1


def test_ship_prefers_the_fastest_passing_artifact_then_the_last_made():
    art = artifact(Role.BASELINE)
    art.info.gate_results = {
        "distilled": {"passed": True},
        "model.onnx": {"passed": True},
        "model.int8.onnx": {"passed": False},
    }
    assert gates.ship(art) == {
        "artifact": "model.onnx",
        "rule": "the last made (most compressed) of the artifacts that passed their gates; validate did not run",
    }
    art.info.results = [
        {"artifact": "distilled", "latency_ms": {"p50": 0.5}},
        {"artifact": "model.onnx", "latency_ms": {"p50": 0.9}},
        {"artifact": "model.int8.onnx", "latency_ms": {"p50": 0.1}},
    ]
    assert gates.ship(art)["artifact"] == "distilled"  # int8 is fastest but failed its gate
    art.info.gate_results = {"model.int8.onnx": {"passed": False}}
    assert gates.ship(art) is None


def test_stage_limits_name_registered_stages():
    with pytest.raises(EdgekitError, match=r"gate\.stage_max_drop names unknown stage 'quantise': use one of"):
        GateConfig(stage_max_drop={"quantise": 1.0})
    with pytest.raises(EdgekitError, match="give a drop in points >= 0"):
        GateConfig(stage_max_drop={"quantize": -1})


def _row(artifact: str, p50: float, role: Role, backend: str, top1: float = 0.9, of: str | None = None) -> dict:
    return {
        "artifact": artifact,
        "of": of or artifact,
        "role": role.value,
        "backend": backend,
        "top1": top1,
        "latency_ms": {"p50": p50},
    }


def test_an_openvino_target_ships_by_the_openvino_rows_and_other_runtimes_never_ship():
    art = artifact(Role.BASELINE)
    art.info.results = [
        _row("baseline", 5.0, Role.BASELINE, "torch"),
        _row("model.onnx", 1.0, Role.ONNX, "onnxruntime"),
        _row("model.int8.onnx", 1.2, Role.INT8_ONNX, "onnxruntime"),
        _row("model.onnx (openvino)", 0.9, Role.ONNX, "openvino", of="model.onnx"),
        _row("model.int8.onnx (openvino)", 0.6, Role.INT8_ONNX, "openvino", of="model.int8.onnx"),
        _row("model.int8.onnx (onnxruntime-cuda)", 0.05, Role.INT8_ONNX, "onnxruntime-cuda", of="model.int8.onnx"),
    ]
    # ONNX Runtime's rows decide on the cpu target; the CUDA provider's faster row is not a CPU file's speed.
    assert gates.ship(art)["artifact"] == "model.onnx"
    art.info.target = "openvino"
    shipped = gates.ship(art)
    assert shipped["artifact"] == "model.int8.onnx" and "in OpenVINO" in shipped["rule"]
    art.info.gate_results = {"model.onnx": {"passed": True}, "model.int8.onnx": {"passed": True}}
    assert gates.ship(art)["artifact"] == "model.int8.onnx"  # gated: the same ranking rows
