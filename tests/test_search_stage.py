"""The search as a pipeline stage and a command: `edgekit search` runs train, search (which prunes to the
chosen layer ratios), distill, export, int8 and validate in one run folder; its search_recipe.yaml
reproduces the chosen model through `edgekit run` without searching; bad combinations are one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import SLICE
from edgekit.cli import main

QUICK = [
    "--epochs", "1", "--distill-epochs", "1", "--set", f"data.root={SLICE}", "--set", "export.parity_images=16",
    "--set", "validate.min_seconds=0.05", "--set", "validate.min_runs=5", "--set", "validate.warmup_s=0",
    "--set", "validate.openvino=off", "--set", "validate.profile_runs=5",
]  # fmt: skip
SMALL_SEARCH = [
    "--budget-evals", "8", "--population", "4", "--set", "search.proxy_images=200", "--set", "search.bn_images=100",
    "--set", "search.finalists=1",
]  # fmt: skip


def _stages(run_dir: Path) -> dict[str, dict]:
    report = json.loads((run_dir / "report.json").read_text())
    return {s["name"]: s["metrics"] for s in report["stages"]}


def _top1(run_dir: Path) -> dict[str, float]:
    report = json.loads((run_dir / "report.json").read_text())
    return {r["artifact"]: r["top1"] for r in report["results"]}


@pytest.mark.slow
def test_search_command_runs_the_pipeline_and_its_recipe_reproduces_the_model(tmp_path, capsys):
    argv = ["search", "lenet5", "--target-macs", "0.7", "--algorithm", "pso", "--int8", *SMALL_SEARCH, *QUICK]
    assert main([*argv, "--output", str(tmp_path / "a"), "--json", "-q"]) == 0
    out = json.loads(capsys.readouterr().out)
    run_dir = Path(out["run_dir"])
    stages = _stages(run_dir)
    searched = stages["search"]
    assert searched["algorithm"] == "pso" and 0 < searched["evaluations"] <= 8
    assert searched["macs_after"] <= 0.7 * searched["macs_before"] and searched["chosen"]["macs_fraction"] <= 0.7
    assert stages["prune"]["skipped"].startswith("the search stage pruned")
    assert "skipped" not in stages["distill"] and "skipped" not in stages["quantize"]
    assert searched["front"]["points"] and (run_dir / searched["files"]["result"]).is_file()
    html = (run_dir / "report.html").read_text()
    assert "<h2>Search</h2>" in html and "<h2>Per-layer profile: model.int8.onnx</h2>" in html
    assert set(stages["validate"]["profiles"]) == {"model.onnx", "model.int8.onnx"}

    # The written recipe: the chosen ratios, no search section; `edgekit run` prunes to the same model.
    recipe_file = run_dir / searched["files"]["recipe"]
    tree = yaml.safe_load(recipe_file.read_text())
    assert "search" not in tree and tree["prune"]["layer_ratios"] == searched["layer_ratios"]
    assert main(["run", str(recipe_file), "--output", str(tmp_path / "b"), "--json", "-q"]) == 0
    again = Path(json.loads(capsys.readouterr().out)["run_dir"])
    redo = _stages(again)
    assert "skipped" in redo["search"] and redo["prune"]["macs_after"] == searched["macs_after"]
    assert _top1(again)["pruned"] == _top1(run_dir)["pruned"]  # the same pruned weights, not only the shape


def test_search_needs_a_target_and_refuses_pruning_flags(tmp_path, capsys):
    assert main(["search", "lenet5", "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "search needs a target" in err and "--target-latency-ms" in err and len(err.splitlines()) == 1
    assert main(["search", "lenet5", "--target-macs", "0.5", "--prune", "0.3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --prune is an option of `edgekit compress`, not of `edgekit search`: the search")
    assert "--target-latency-ratio" in err and len(err.splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_a_recipe_with_a_search_target_and_a_prune_ratio_is_refused(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {name: lenet5}\nsearch: {target_macs: 0.7}\nprune: {ratio: 0.3}\n")
    assert main(["run", str(recipe), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "search.target_* is set" in err and "remove them" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_search_replaces_the_recipe_prune_settings(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {name: lenet5}\nprune: {ratio: 0.3, steps: 2}\n")
    argv = ["search", "lenet5", "--recipe", str(recipe), "--target-latency-ms", "1.5", "--print-recipe"]
    assert main(argv) == 0
    tree = yaml.safe_load(capsys.readouterr().out)
    assert tree["prune"]["ratio"] == 0 and tree["prune"]["steps"] == 2 and tree["search"]["target_latency_ms"] == 1.5
