"""The comparison benchmark (bench/): result schema, the two bars, and a --quick run end to end."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import table  # noqa: E402


def _rows(**top1_ips):
    """Rows named by method with (top1, throughput); other numbers fixed."""
    return [
        table.row(m, top1=a, macs=1_000_000, size_mb=1.0, latency_ms_p50=0.3, throughput_ips=ips, seconds=1.0)
        for m, (a, ips) in top1_ips.items()
    ]


def _bench(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *args], capture_output=True, text=True, cwd=REPO, timeout=1200
    )


def _bar(res, name):
    return next(b for b in table.bars(res) if b["bar"] == name)


def test_schema_accepts_a_full_result_and_names_what_is_wrong():
    rows = _rows(
        **{
            "edgekit": (0.9, 6000),
            "torch-pruning": (0.89, 5000),
            "ort-quantize-static": (0.88, 3000),
            "nncf": (0.895, 4000),
        }
    )
    res = table.result("m", "d", 0.9, rows)
    assert table.schema_problems(res) == []
    assert set(rows[0]) == set(table.ROW_KEYS)

    missing = table.result("m", "d", 0.9, rows[:3])
    assert table.schema_problems(missing) == ["method nncf missing"]
    bad = table.result("m", "d", 0.9, rows[:3] + [dict(rows[3], top1=float("nan"))])
    assert any("not finite" in p for p in table.schema_problems(bad))
    extra = table.result("m", "d", 0.9, rows[:3] + [dict(rows[3], speed=1)])
    assert any("keys" in p for p in table.schema_problems(extra))
    # A failed row carries None numbers and an error, and is valid.
    failed = table.result(
        "m", "d", 0.9, rows[:3] + [table.row("nncf", error="nncf is not installed: pip install nncf")]
    )
    assert table.schema_problems(failed) == []
    assert failed["rows"][3]["top1"] is None


def test_accuracy_bar_counts_ties_within_two_tenths_of_a_point():
    tie = table.result(
        "m",
        "d",
        0.9,
        _rows(
            **{
                "edgekit": (0.900, 6000),
                "torch-pruning": (0.9019, 1),
                "ort-quantize-static": (0.8, 1),
                "nncf": (0.8, 1),
            }
        ),
    )
    assert _bar(tie, "accuracy")["passed"] is True
    worse = table.result(
        "m",
        "d",
        0.9,
        _rows(
            **{
                "edgekit": (0.900, 6000),
                "torch-pruning": (0.9025, 1),
                "ort-quantize-static": (0.8, 1),
                "nncf": (0.8, 1),
            }
        ),
    )
    bar = _bar(worse, "accuracy")
    assert bar["passed"] is False and "torch-pruning" in bar["detail"] and "-0.25 points" in bar["detail"]


def test_speed_bar_compares_with_the_fastest_peer_that_is_not_more_accurate():
    # nncf is faster but clearly more accurate: it is not the one to beat; ORT (less accurate) is.
    res = table.result(
        "m",
        "d",
        0.9,
        _rows(
            **{
                "edgekit": (0.90, 5000),
                "torch-pruning": (0.95, 9000),
                "ort-quantize-static": (0.85, 4000),
                "nncf": (0.93, 8000),
            }
        ),
    )
    bar = _bar(res, "speed @32")
    assert bar["passed"] is True and "ort-quantize-static" in bar["detail"]
    slower = table.result(
        "m",
        "d",
        0.9,
        _rows(
            **{
                "edgekit": (0.90, 3000),
                "torch-pruning": (0.95, 9000),
                "ort-quantize-static": (0.85, 4000),
                "nncf": (0.93, 8000),
            }
        ),
    )
    assert _bar(slower, "speed @32")["passed"] is False


def test_write_keeps_every_models_table_in_results_md(tmp_path):
    rows = _rows(
        **{
            "edgekit": (0.9, 6000),
            "torch-pruning": (0.89, 5000),
            "ort-quantize-static": (0.88, 3000),
            "nncf": (0.895, 4000),
        }
    )
    table.write(tmp_path, table.result("mobilenet_v3", "fashion_mnist", 0.9, rows), {"notes": ["a note"]})
    table.write(tmp_path, table.result("resnet18", "fashion_mnist", 0.91, rows), {})
    assert json.loads((tmp_path / "resnet18_fashion_mnist.json").read_text())["baseline_top1"] == 0.91
    md = (tmp_path / "RESULTS.md").read_text()
    assert "## mobilenet_v3 on fashion_mnist" in md and "## resnet18 on fashion_mnist" in md
    assert "| edgekit | 90.00% | +0.00 |" in md and "- a note" in md
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_seeds_merge_into_means_with_the_spread_as_the_tie_margin(tmp_path):
    def run(ek, tp):
        rows = _rows(**{"edgekit": (ek, 6000), "torch-pruning": (tp, 5000), "ort-quantize-static": (0.85, 3000)})
        return table.result("m", "d", 0.9, rows + [table.row("nncf", error="nncf is not installed")])

    merged = table.merge_seeds({0: run(0.900, 0.905), 1: run(0.890, 0.900), 2: run(0.910, 0.895)})
    assert table.schema_problems(merged) == []
    rows = {r["method"]: r for r in merged["rows"]}
    assert rows["edgekit"]["top1"] == pytest.approx(0.9) and rows["edgekit"]["top1_runs"] == [0.9, 0.89, 0.91]
    assert rows["edgekit"]["top1_spread"] == pytest.approx(0.02)
    assert rows["nncf"]["error"] == "seed 0: nncf is not installed"
    # 0.5 points behind on the mean, inside the 2-point spread of the seeds: a tie, so the bar passes
    assert _bar(merged, "accuracy")["passed"] and "ties within 2.00" in _bar(merged, "accuracy")["detail"]
    assert "per seed -0.50, -1.00, +1.50: mixed signs" in _bar(merged, "accuracy")["detail"]  # paired by seed
    behind = table.merge_seeds({0: run(0.900, 0.905), 1: run(0.890, 0.900), 2: run(0.910, 0.915)})
    assert "below on every seed" in _bar(behind, "accuracy")["detail"]  # a tie by the spread, said plainly
    tight = table.merge_seeds({0: run(0.900, 0.905), 1: run(0.901, 0.906)})
    assert not _bar(tight, "accuracy")["passed"]  # 0.5 behind with a 0.1 spread: a miss
    # a method failing on one seed only fails in the merged result, naming that seed
    broken = run(0.9, 0.9)
    broken["rows"][1] = table.row("torch-pruning", error="TypeError: x")
    assert {r["method"]: r for r in table.merge_seeds({0: run(0.9, 0.9), 3: broken})["rows"]}["torch-pruning"][
        "error"
    ] == "seed 3: TypeError: x"
    table.write(tmp_path, merged, {})
    assert "90.00% (spread 2.00)" in (tmp_path / "RESULTS.md").read_text()


def test_compare_runs_three_seeds_unless_quick_and_refuses_a_bad_list(capsys):
    from bench import compare

    assert compare.parse([]).seeds == [0, 1, 2]
    assert compare.parse(["--quick"]).seeds == [0]
    assert compare.parse(["--seeds", "2,0,2"]).seeds == [0, 2]
    with pytest.raises(SystemExit) as exc:
        compare.parse(["--seeds", "0,one"])
    assert exc.value.code == 2 and "write e.g. --seeds 0,1,2" in capsys.readouterr().err


def test_reused_seeds_merge_without_training_and_a_resized_run_keeps_the_native_files(tmp_path, monkeypatch):
    """--reuse-seeds merges the seeds an earlier run left in <out>/seeds/ (no training: bench_seed must
    not be called), and a run at another image size names its files apart from the native run's."""
    from bench import compare
    from bench.timing import Timing

    rows = _rows(
        **{"edgekit": (0.9, 6000), "torch-pruning": (0.89, 5000), "ort-quantize-static": (0.88, 3000)},
        nncf=(0.88, 2000),
    )
    for seed, delta in ((0, 0.0), (1, 0.02)):
        res = table.result("mobilenet_v3", "fashion_mnist-160px", 0.9, [dict(r, top1=r["top1"] + delta) for r in rows])
        table.write(tmp_path / "seeds", res, {"notes": [], "edgekit_run": f"run{seed}"}, suffix=f"_seed{seed}")

    def no_training(*args, **kwargs):
        raise AssertionError("a reused seed was trained again")

    monkeypatch.setattr(compare, "bench_seed", no_training)
    args = compare.parse(["--seeds", "0,1", "--reuse-seeds", "--out", str(tmp_path), "--set", "data.image_size=160"])
    out = compare.bench_model("mobilenet_v3", args, compare._sets(args.sets), Timing())
    assert out.name == "mobilenet_v3_fashion_mnist-160px.json"
    merged = json.loads(out.read_text())
    ek = next(r for r in merged["rows"] if r["method"] == "edgekit")
    assert ek["top1_runs"] == [0.9, 0.92] and merged["seeds"] == [0, 1]
    assert "seeds 0, 1 reused" in json.loads(out.with_name(out.stem + ".meta.json").read_text())["notes"][-1]
    assert not (tmp_path / "mobilenet_v3_fashion_mnist.json").exists()


@pytest.mark.slow
def test_quick_run_writes_every_method_with_finite_numbers(tmp_path):
    """`python bench/compare.py --quick` on the shipped slice: the real pipeline and the real peers."""
    out, work = tmp_path / "results", tmp_path / "work"
    proc = _bench("compare.py", "--quick", "--models", "mobilenet_v3", "--out", str(out), "--work", str(work))
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((out / "mobilenet_v3_fashion_mnist.json").read_text())
    assert table.schema_problems(res) == []
    rows = {r["method"]: r for r in res["rows"]}
    nncf = rows["nncf"]
    try:
        import nncf as _  # noqa: F401

        assert "error" not in nncf, nncf.get("error")
    except ImportError:
        assert "pip install nncf" in nncf["error"]
    for method in ("edgekit", "torch-pruning", "ort-quantize-static", "edgekit-fp32", "baseline-fp32"):
        r = rows[method]
        assert "error" not in r, f"{method}: {r.get('error')}"
        assert all(math.isfinite(r[k]) for k in table.NUMBERS) and 0 <= r["top1"] <= 1
    base = rows["baseline-fp32"]
    assert res["baseline_top1"] == base["top1"]
    # Pruning cuts MACs (edgekit rounds channels to 8, torch-pruning does not); int8 cuts the file size.
    assert rows["edgekit"]["macs"] < 0.7 * base["macs"] and rows["torch-pruning"]["macs"] < 0.7 * base["macs"]
    assert rows["ort-quantize-static"]["macs"] == base["macs"]
    assert rows["edgekit"]["size_mb"] < rows["edgekit-fp32"]["size_mb"] / 2
    assert rows["ort-quantize-static"]["size_mb"] < base["size_mb"] / 2
    assert "## mobilenet_v3 on fashion_mnist" in (out / "RESULTS.md").read_text()


def test_resolution_bench_reports_the_recipes_cpu_latency(tmp_path):
    """`python bench/resolution.py --quick`: the 224-px recipe's pipeline end to end (here on the shipped
    slice at 64 px from scratch, for time), and every ONNX file's measured figures in the table."""
    out = tmp_path / "results"
    sets = ["data.root=" + str(REPO / "tests" / "data" / "fashion-mnist"), "data.image_size=64", "model.weights=null"]
    args = ["--quick", "--out", str(out), "--work", str(tmp_path)]
    proc = _bench("resolution.py", *args, *[arg for s in sets for arg in ("--set", s)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((out / "efficientnet_lite0_fashion_mnist_224px.json").read_text())
    assert res["image_size"] == 64
    rows = {r["artifact"]: r for r in res["rows"]}
    assert {"baseline.onnx", "model.onnx", "model.int8.onnx"} <= set(rows)
    for r in rows.values():
        assert math.isfinite(r["latency_ms_p50"]) and r["latency_ms_p50"] > 0 and r["throughput_ips"] > 0
    assert rows["model.onnx"]["macs"] < rows["baseline.onnx"]["macs"]  # pruned 0.3
    assert rows["model.int8.onnx"]["precision"] == "int8"
    assert 0 < rows["model.int8.onnx"]["peak_share"] < 2 and rows["model.int8.onnx"]["int8_kernels"] is not None
    assert int(rows["model.int8.onnx"]["int8_kernels"].split("/")[0]) > 0
    if importlib.util.find_spec("openvino"):  # the set-up installs it; both CPU runtimes time every file
        assert {"model.onnx (openvino)", "model.int8.onnx (openvino)"} <= set(rows)
    table_md = (out / "RESOLUTION.md").read_text()
    assert "| model.int8.onnx | onnxruntime | int8 |" in table_md and "CPU features" in table_md
    assert "Measured peak: fp32" in table_md


def test_speed_rows_run_each_model_at_its_size_with_the_rewrite(tmp_path, monkeypatch):
    """`python bench/resolution.py --speed`: every (model, px) of SPEED_ROWS on recipes/speed_224px.yaml,
    one result each, with the rewrite's rows for a model it applies to (here one small row, for time)."""
    from bench import resolution

    monkeypatch.setattr(resolution, "SPEED_ROWS", [("mobilenet_v3_small", 40)])
    fast = ["validate.min_seconds=0.05", "validate.min_runs=5", "validate.warmup_s=0", "validate.val_images=64"]
    sets = ["data.root=" + str(REPO / "tests" / "data" / "fashion-mnist"), *fast]
    args = ["--speed", "--quick", "--out", str(tmp_path / "out"), "--work", str(tmp_path)]
    assert resolution.main([*args, *[arg for s in sets for arg in ("--set", s)]]) == 0
    res = json.loads((tmp_path / "out" / "speed_mobilenet_v3_small_40px.json").read_text())
    assert res["image_size"] == 40 and res["recipe"].endswith("speed_224px.yaml")
    rows = {r["artifact"]: r for r in res["rows"]}
    assert {"baseline.onnx", "model.int8.onnx", "rewritten.onnx", "rewritten.int8.onnx"} <= set(rows)
    assert "Speed only" in (tmp_path / "out" / "RESOLUTION.md").read_text()


def test_ablation_calls_differences_inside_the_spread_ties():
    from bench.ablation import summary, verdicts

    rows = {
        "ce": summary([0.90, 0.91, 0.92]),  # spread 0.02
        "kd": summary([0.915, 0.92, 0.925]),  # +0.01: inside the larger spread
        "better": summary([0.95, 0.951, 0.952]),  # +0.041: outside
        "worse": summary([0.85, 0.86, 0.855]),
    }
    assert rows["ce"]["mean"] == pytest.approx(0.91) and rows["ce"]["spread"] == pytest.approx(0.02)
    assert verdicts(rows) == {"kd": "tie", "better": "better", "worse": "worse"}
    assert summary([0.9])["std"] == 0.0  # one seed: no spread to speak of


def test_ablation_quick_run_writes_its_table(tmp_path):
    """`python bench/ablation.py --quick` on two rows and two seeds: the real fine-tune and KD loops."""
    out = tmp_path / "out"
    proc = _bench(
        "ablation.py", "--quick", "--rows", "ce,kd", "--seeds", "0,1", "--out", str(out), "--work", str(tmp_path)
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads((out / "mobilenet_v3_fashion_mnist.json").read_text())
    assert set(res["rows"]) == {"ce", "kd"} and res["seeds"] == [0, 1]
    assert all(len(r["runs"]) == 2 and 0 < r["mean"] <= 1 for r in res["rows"].values())
    assert res["verdicts"]["kd"] in ("tie", "better", "worse")
    assert "| kd | KD T 4, alpha 0.7 |" in (out / "ABLATION.md").read_text()


def test_search_bench_compares_at_equal_latency_and_calls_small_differences_ties():
    from bench import search

    def row(method, seed, top1, p50, proxy=None):
        out = {"method": method, "seed": seed, "top1": top1, "latency_ms": {"p50": p50}, "macs": 100}
        if proxy is not None:
            out["search"] = {"seconds": 10.0, "evaluations": 60, "best_proxy_at_budget": proxy}
        return out

    rows = [
        row("uniform", 0, 0.800, 1.00),
        row("uniform", 1, 0.802, 1.00),
        row("ga", 0, 0.830, 1.03, 0.75),
        row("ga", 1, 0.832, 1.03, 0.76),
        row("pso", 0, 0.801, 1.10, 0.700),
        row("pso", 1, 0.803, 1.10, 0.705),
        row("random", 0, 0.790, 0.98, 0.700),
        row("random", 1, 0.792, 0.98, 0.705),
    ]
    v = search.verdicts(search.aggregate(rows))
    assert v["ga vs uniform"].startswith("top-1 +3.00 points (better)") and "(same latency)" in v["ga vs uniform"]
    assert "(tie)" in v["pso vs uniform"] and "10% slower" in v["pso vs uniform"]  # +0.1 point is inside the spread
    assert "(worse)" in v["random vs uniform"] and "(same latency)" in v["random vs uniform"]
    one_seed = search.verdicts(search.aggregate([r for r in rows if r["seed"] == 0]))
    assert "(one seed: no verdict)" in one_seed["ga vs uniform"]
    assert "(tie)" in v["pso vs random"] and "(better)" in v["ga vs random"]

    rows[2]["search"] |= {"fill_seconds": 4.0, "grown": True}  # the fill grew GA's choice on seed 0 only
    rows[3]["search"] |= {"fill_seconds": 2.0, "grown": False}
    agg = search.aggregate(rows)
    assert agg["ga"]["fill_seconds"] == 3.0 and agg["ga"]["grown"] == 1 and agg["pso"]["grown"] == 0
    res = {"model": "m", "data": "d", "setup": "s", "seeds": [0, 1], "summary": agg, "verdicts": {}}
    res["baseline_top1"] = 0.8
    assert "| 3.0 (1/2) |" in search.markdown(res) and "fill s (grown)" in search.markdown(res)


def test_algorithm_bench_tracks_the_best_feasible_candidate_and_pairs_seeds_with_random(tmp_path):
    """`python bench/search_algorithms.py --quick` on LeNet-5: every variant searches the same seed under
    the MACs target; each curve is the best feasible proxy so far, never falling."""
    from bench import search_algorithms

    evaluated = [{"macs_fraction": m, "proxy_top1": p} for m, p in ((0.9, 0.9), (0.4, 0.5), (0.5, 0.7), (0.3, 0.6))]
    assert search_algorithms.best_so_far(evaluated, 0.5) == [0.0, 0.5, 0.7, 0.7]
    out = tmp_path / "out"
    proc = _bench(
        "search_algorithms.py", "--quick", "--models", "lenet5", "--seeds", "0", "--budget-evals", "24",
        "--target-macs", "0.75", "--out", str(out), "--work", str(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads((out / "algorithms_lenet5_fashion_mnist.json").read_text())
    assert {r["variant"] for r in res["runs"]} == set(search_algorithms.VARIANTS)
    for run in res["runs"]:
        assert run["evaluations"] == 24 and run["curve"] == sorted(run["curve"]) and 0 < run["best_proxy"] <= 1
    assert res["summary"]["variants"]["random"]["gap_to_random"] == [0.0]
    assert "| ga-step |" in (out / "ALGORITHMS.md").read_text()
    from bench import search

    (out / "m_d.json").write_text("{}")  # the latency bench's SEARCH.md reads its own files only
    assert search.own_results(out) == [out / "m_d.json"]
