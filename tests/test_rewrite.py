"""The deployment rewrite (edgekit.rewrite) and its stage: HardSwish/SiLU -> ReLU, SE blocks removed, a
candidate that is measured, judged and shipped only when it is the fastest within the gate."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
import torch
from torch import nn

import edgekit
from conftest import FAST_SETS, sets
from edgekit.artifact import Artifact, Role
from edgekit.backends.ort import kernel_counts
from edgekit.cli import main
from edgekit.gates import GateConfig, check
from edgekit.rewrite import applies_to, is_se, rewrite


def _count(model: nn.Module, cls) -> int:
    return sum(isinstance(m, cls) for m in model.modules())


def test_rewrite_swaps_activations_drops_se_and_leaves_the_original_alone():
    model = edgekit.create_model("mobilenet_v3_small", num_classes=10, in_chans=1, small_input=True).eval()
    hardswish, se = _count(model, nn.Hardswish), sum(is_se(m) for m in model.modules())
    assert hardswish > 0 and se > 0
    done = rewrite(model)
    assert _count(done.model, nn.Hardswish) == 0 and not any(is_se(m) for m in done.model.modules())
    assert done.activations == {"Hardswish": hardswish} and done.se_removed == se and done.changed
    assert _count(model, nn.Hardswish) == hardswish  # a copy: the source model still runs as trained
    x = torch.randn(2, 1, 28, 28)
    assert done.model(x).shape == model(x).shape == (2, 10)
    # Removing SE removes its parameters; the convolutions' weights are the source's own.
    assert sum(p.numel() for p in done.model.parameters()) < sum(p.numel() for p in model.parameters())
    torch.testing.assert_close(done.model.features[0][0].weight, model.features[0][0].weight)


def test_rewrite_keeping_se_keeps_its_bounded_gate():
    model = edgekit.create_model("mobilenet_v3_small", num_classes=10, in_chans=1, small_input=True)
    done = rewrite(model, drop_se=False)
    assert done.se_removed == 0 and done.se_kept > 0
    gates = [m for m in done.model.modules() if is_se(m)]
    assert all(any(isinstance(c, nn.Hardsigmoid) for c in g.modules()) for g in gates)
    assert _count(done.model, nn.Hardswish) == 0


@pytest.mark.parametrize(
    ("name", "applies"), [("resnet18", False), ("mobilenet_v2", False), ("efficientnet_b0", True), ("ghostnet", True)]
)
def test_rewrite_applies_only_where_there_is_a_float_island(name, applies):
    model = edgekit.create_model(name, num_classes=10)
    assert applies_to(model) is applies
    assert applies_to(rewrite(model).model) is False  # nothing left to rewrite


def test_a_candidate_that_misses_the_gate_does_not_fail_the_run(tmp_path):
    """Judged like a deliverable, but its miss only keeps it from shipping."""
    from edgekit.artifact import ModelEntry

    art = Artifact(tmp_path)
    for role, name in ((Role.BASELINE, "baseline"), (Role.REWRITTEN_ONNX, "rewritten.onnx")):
        art.entries[role] = ModelEntry(role, name, role.spec.format, "fp32", 1, 1, tmp_path / name)
    scores = {"baseline": 0.90, "rewritten.onnx": 0.80}
    verdict = check("rewrite", art, {Role.BASELINE}, GateConfig(enforce=True), lambda e: scores[e.name], 100)
    assert verdict is not None and verdict["failed"] is None
    result = art.info.gate_results["rewritten.onnx"]
    assert result["passed"] is False and "not shipped" in result["note"]


def test_rewrite_stage_makes_int8_files_without_float_islands(tmp_path, capsys):
    """An --int8 run of MobileNetV3 gains rewritten.onnx and rewritten.int8.onnx with their own rows;
    the rewritten int8 graph has no HardSwish or SE gate left and runs every convolution as an integer
    kernel in ONNX Runtime's optimized graph (model.int8.onnx keeps its HardSwish in float)."""
    over = {**FAST_SETS, "train.epochs": 1, "distill.epochs": 1, "rewrite.epochs": 1, "data.train_limit": 600}
    over["train.cache"] = "false"  # train here, so the up-front estimate is logged
    args = ["compress", "mobilenet_v3", "--prune", "0.3", "--int8", "--output", str(tmp_path), *sets(over)]
    assert main(args) == 0
    assert "rewrite about" in capsys.readouterr().out  # the up-front estimate counts the rewrite's epochs
    run = next(p for p in tmp_path.iterdir() if p.is_dir())
    report = json.loads((run / "report.json").read_text())
    stage = next(s for s in report["stages"] if s["name"] == "rewrite")
    assert stage["metrics"]["se_removed"] > 0 and stage["metrics"]["activations_to_relu"]["Hardswish"] > 0
    rows = {r["artifact"]: r for r in report["results"]}
    assert rows["rewritten.int8.onnx"]["role"] == "rewritten_int8_onnx"
    assert rows["rewritten.onnx"]["precision"] == "fp32"
    assert rows["rewritten.onnx"]["macs"] < rows["model.onnx"]["macs"]  # the SE blocks' pool and 1x1 convs are gone
    ops = {n.op_type for n in onnx.load(str(run / "rewritten.int8.onnx")).graph.node}
    assert not ops & {"HardSwish", "HardSigmoid", "Mul"}
    assert "HardSwish" in {n.op_type for n in onnx.load(str(run / "model.int8.onnx")).graph.node}
    counts = kernel_counts(run / "rewritten.int8.onnx", 1)
    assert counts["float"] == 0 and counts["int8"] > 20
    assert any("rewritten.int8.onnx" in n and "baseline's speed" in n for n in report["notes"])


def test_rewrite_off_and_models_it_does_not_change_skip_with_a_reason(tmp_path):
    from edgekit.recipe import load_recipe
    from edgekit.stages import STAGES
    from edgekit.stages.context import Context

    recipe = load_recipe(Path("recipes/mobilenet_v3_fashion_mnist.yaml"), {"rewrite.mode": "off"})
    stage = STAGES.get("rewrite")
    art = Artifact(tmp_path)
    ctx = Context(recipe, None, tmp_path)
    assert stage.skip(art, recipe.rewrite, ctx) == "rewrite.mode is off"
    recipe = load_recipe(Path("recipes/mobilenet_v3_fashion_mnist.yaml"), {"model.name": "resnet18"})
    art.add(Role.BASELINE, tmp_path / "b.pt", 1, 1, module=edgekit.create_model("resnet18", num_classes=10))
    assert "nothing to rewrite" in (stage.skip(art, recipe.rewrite, Context(recipe, None, tmp_path)) or "")
