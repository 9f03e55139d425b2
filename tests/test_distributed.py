"""Data-parallel training (edgekit.distributed): sharding, rank-0-only writes, the --nproc launcher's bad
input, and real 2-process gloo runs through torchrun and --nproc on the shipped slice."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import edgekit.distributed as dist
from conftest import FAST_SETS, sets
from edgekit.cli import main
from edgekit.cli.pipeline_cmds import without_launch_flags
from edgekit.errors import EdgekitError
from edgekit.fileio import atomic_write_text

ROOT = Path(__file__).resolve().parent.parent
# lenet (no BatchNorm) for 3 + 2 epochs: a few seconds of training per process.
ARGS = [
    *("compress", "lenet", "--prune", "0.3", "--epochs", "3", "--distill-epochs", "2"),
    *sets({**FAST_SETS, "train.cache": "false"}),
]


def _edgekit(*args: str, torchrun: int = 0, env: dict | None = None) -> subprocess.CompletedProcess:
    launcher = ["-m", "torch.distributed.run", "--nproc-per-node", str(torchrun), "--master-port", str(_port())]
    cmd = [sys.executable, *(launcher if torchrun else []), "-m", "edgekit", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})


def _port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


# --- units: no process group ------------------------------------------------------------------------------


def test_shards_are_disjoint_and_cover_each_global_batch():
    order = torch.randperm(1500, generator=torch.Generator().manual_seed(0))
    for start in range(0, 1500, 128):
        batch = order[start : start + 128]
        parts = [batch[dist.shard(torch.arange(len(batch)), r, 2)] for r in range(2)]
        assert sorted(torch.cat(parts).tolist()) == sorted(batch.tolist())  # every image once, none twice
        assert abs(len(parts[0]) - len(parts[1])) <= 1  # the same work per rank, one step each
    again = torch.randperm(1500, generator=torch.Generator().manual_seed(0))
    assert torch.equal(order, again)  # the same seed gives every rank the same global order, so the same shards


def test_world_size_one_is_a_no_op(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert (dist.world_size(), dist.is_main(), dist.backend()) == (1, True, None)
    assert dist.broadcast_object({"a": 1}) == {"a": 1}
    assert dist.all_reduce_sum([1.0, 2.0]) == [1.0, 2.0]


def test_other_ranks_cannot_write(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="only rank 0 writes"):
        atomic_write_text(tmp_path / "report.json", "{}")
    assert list(tmp_path.iterdir()) == []


def test_batch_must_divide_among_the_processes():
    dist.check_batch("train", 128, 2)
    with pytest.raises(EdgekitError, match=r"train.batch_size 127 does not divide among 2 processes.*e.g. 126"):
        dist.check_batch("train", 127, 2)


def test_launch_flags_are_dropped_from_the_processes_command_line():
    argv = ["compress", "lenet", "--nproc", "2", "--master-port=29511", "--epochs", "1"]
    assert without_launch_flags(argv) == ["compress", "lenet", "--epochs", "1"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--nproc", "99"], "--nproc 99 is more than the"),
        (["--nproc", "0"], "--nproc 0 is not a process count"),
        (["--master-port", "29512"], "--master-port applies only with --nproc"),
    ],
)
def test_bad_nproc_is_one_line_exit_2(tmp_path, capsys, extra, message):
    assert main([*ARGS, "--output", str(tmp_path / "a"), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "a").exists()


def test_a_port_in_use_is_one_line_exit_2(tmp_path, capsys):
    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main([*ARGS, "--output", str(tmp_path / "a"), "--nproc", "2", "--master-port", str(port)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--master-port {port} is in use" in err[0]


# --- real 2-process gloo runs -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same small compress in one process and in two (torchrun, gloo)."""
    out = tmp_path_factory.mktemp("dist")
    one = _edgekit(*ARGS, "--output", str(out / "one"))
    two = _edgekit(*ARGS, "--output", str(out / "two"), torchrun=2)
    assert one.returncode == 0, one.stderr[-2000:]
    assert two.returncode == 0, two.stderr[-2000:]
    return out, two


def _report(folder: Path) -> dict:
    (run,) = list(folder.iterdir())  # one run folder: rank 1 made none
    return json.loads((run / "report.json").read_text())


def _top1(report: dict, artifact: str) -> float:
    return next(r["top1"] for r in report["results"] if r["artifact"] == artifact)


@pytest.mark.slow
def test_two_process_run_writes_one_folder_and_matches_one_process(runs):
    out, two = runs
    single, double = _report(out / "one"), _report(out / "two")
    assert (single["world_size"], single["backend"]) == (1, None)
    assert (double["world_size"], double["backend"]) == (2, "gloo")
    (run,) = list((out / "two").iterdir())
    assert json.loads((run / "manifest.json").read_text())["info"]["world_size"] == 2
    assert not [p for p in run.iterdir() if p.name.startswith(".")]  # no epoch checkpoint or temp file left
    # Both runs see the same augmented images in the same global batches with gradients averaged over the
    # batch, so only float summation order differs: on 500 validation images one image is 0.2 points, and
    # 1 point (5 images) is well inside that noise yet far below what a broken sharding or averaging costs.
    for artifact in ("baseline", "distilled"):
        assert abs(_top1(single, artifact) - _top1(double, artifact)) <= 0.01
    loss = {r["name"]: r["metrics"]["final_loss"] for r in double["stages"] if r["name"] in ("train", "distill")}
    assert loss.keys() == {"train", "distill"}
    assert two.stdout.count("== train") == 1  # rank 1 prints nothing: one process tells the run


@pytest.mark.slow
def test_resume_needs_the_world_size_the_run_started_with(runs, capsys):
    out, _ = runs
    (run,) = list((out / "two").iterdir())
    assert main(["run", "--resume", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "was started with 2 process(es) and this resume has 1" in err[0]
    assert "--nproc 2" in err[0]


@pytest.mark.slow
def test_resume_with_the_same_world_size_continues(runs, tmp_path):
    """A run cut off after prune continues in two processes: distill trains again, the rest follows."""
    out, _ = runs
    (done,) = list((out / "two").iterdir())
    run = tmp_path / done.name
    subprocess.run(["cp", "-r", str(done), str(run)], check=True)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["stages"] = [s for s in manifest["stages"] if s["name"] in ("load", "train", "search", "prune")]
    manifest["entries"] = [e for e in manifest["entries"] if e["role"] in ("baseline", "pruned")]
    (run / "manifest.json").write_text(json.dumps(manifest))
    resumed = _edgekit("run", "--resume", str(run), "--nproc", "2")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    report = json.loads((run / "report.json").read_text())
    assert report["world_size"] == 2 and len(report["resumed"]) == 1
    assert [s["name"] for s in report["stages"] if "skipped" not in s["metrics"]][-3:] == [
        "distill",
        "export",
        "validate",
    ]


@pytest.mark.slow
def test_batch_that_does_not_divide_stops_every_process_with_one_line(tmp_path):
    result = _edgekit(*ARGS, "--output", str(tmp_path / "a"), "--nproc", "2", "--set", "train.batch_size=127")
    assert result.returncode == 2
    assert _errors(result.stderr) == [
        "error: train.batch_size 127 does not divide among 2 processes: the global batch stays 127 and each process "
        "takes batch_size / 2; set --set train.batch_size to a multiple of 2, e.g. 126"
    ]
    assert not (tmp_path / "a").exists() or not list((tmp_path / "a").iterdir())  # no run folder


@pytest.mark.slow
def test_work_spread_over_two_ranks_is_gathered_in_order_and_a_failing_share_names_its_rank():
    """edgekit.sharding under torchrun: rank 1 answers map jobs from its wait loop; a sharded evaluation,
    a sharded int8 sensitivity ranking, a sharded minmax calibration and a search whose candidates are
    scored across the ranks give exactly what one process gives; an error on rank 1 reaches rank 0 as one
    line naming rank 1."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(_port())]
    result = subprocess.run(
        [*cmd, str(ROOT / "tests" / "rank_jobs.py")], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    squares = lines[0]["squares"]
    assert [p["rank"] for p in squares] == [0, 1] and squares[0]["pid"] != squares[1]["pid"]  # two processes
    assert [v for p in squares for v in p["values"]] == [i * i for i in range(11)]  # every item once, in order
    assert lines[1]["sharded"] == lines[1]["one_process"]
    ranked = lines[2]["sensitivity"]
    assert len(ranked) >= 4 and ranked == lines[2]["one_process"]  # every layer once, the same scores
    ranges = lines[3]["calibration"]
    assert len(ranges) >= 4 and ranges == lines[3]["one_process"]  # every tensor, the same ranges exactly
    assert lines[3]["shares"] == [len(ranges), len(ranges)]  # both ranks calibrated (their own images)
    searched = lines[4]
    assert len(searched["search"]) == 10 and searched["search"] == searched["one_process"]  # the same records
    assert searched["chosen"][0]["layer_ratios"] == searched["chosen"][1]["layer_ratios"]
    assert all(len(s) == 2 and min(s) > 0 for s in searched["shares"][:1])  # both ranks scored candidates
    assert lines[5]["error"] == "rank 1 failed in its share of the work: disk full on rank 1"


def test_a_share_that_spreads_work_runs_it_alone(monkeypatch):
    """across_ranks called from inside a share (a share that quantizes calibrates across ranks) runs in
    that process: the other ranks are computing their own shares and would never answer a broadcast."""
    from edgekit import sharding

    monkeypatch.setattr(dist, "world_size", lambda: 2)
    monkeypatch.setattr(dist, "broadcast_object", lambda obj: pytest.fail("a share broadcast a job"))
    inner = sharding.share(lambda rank, world: sharding.across_ranks(lambda r, w: (r, w)), 1, 2)
    assert inner == [(0, 1)]


def test_shares_cover_the_items_once():
    from edgekit.sharding import across_ranks

    for n, world in ((11, 2), (2, 3), (0, 2), (1000, 7)):
        spans = [dist.bounds(n, r, world) for r in range(world)]
        # the sizes of torch.tensor_split, the rule training's shards used before they went through bounds
        assert [b - a for a, b in spans] == [len(t) for t in torch.tensor_split(torch.arange(n), world)]
        assert [i for a, b in spans for i in range(a, b)] == list(range(n))
        assert max(b - a for a, b in spans) - min(b - a for a, b in spans) <= 1
    assert across_ranks(lambda rank, world: (rank, world)) == [(0, 1)]  # one process: just the call


@pytest.mark.slow
def test_the_python_api_under_torchrun_writes_one_run_and_every_rank_gets_it(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(_port())]
    script = ROOT / "tests" / "api_under_torchrun.py"
    out, answers = tmp_path / "out", tmp_path / "answers"
    answers.mkdir()
    result = subprocess.run(
        [*cmd, str(script), str(out), str(answers)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    runs = [json.loads((answers / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert runs[0]["run_dir"] == runs[1]["run_dir"] and list(out.iterdir()) == [Path(runs[0]["run_dir"])]
    assert runs[0]["ship"] == runs[1]["ship"] and runs[0]["top1"] == runs[1]["top1"] and runs[0]["top1"]
    assert json.loads((Path(runs[0]["run_dir"]) / "report.json").read_text())["world_size"] == 2
