"""Files others can read, downloads that verify, caches that heal (issue 16): written files follow the
umask, every cache entry carries its hash and a bad one is discarded with one warning and rebuilt,
concurrent writers of one entry both succeed. Fashion-MNIST's verified downloads: tests/test_data_download.py."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import fake_tensorrt
from edgekit import cache
from edgekit.errors import EdgekitError
from edgekit.fileio import atomic_path, atomic_write_bytes

ROOT = Path(__file__).resolve().parent.parent


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.fixture
def umask():
    """Set the process umask for one test, and put the old one back."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


# --- permissions ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)], ids=["022", "077", "002"])
def test_written_files_follow_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    atomic_write_bytes(tmp_path / "report.json", b"{}")
    stored = cache.store(tmp_path / "c" / "entry.bin", lambda tmp: tmp.write_bytes(b"x"))
    assert (tmp_path / "report.json").stat().st_mode & 0o777 == mode
    assert stored is not None and stored.stat().st_mode & 0o777 == mode
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_full_disk_is_one_line_and_leaves_nothing(tmp_path):
    full = pytest.raises(EdgekitError, match=r"^no space left on the device while writing r\.json in .*free disk")
    with full, atomic_path(tmp_path / "r.json") as tmp:
        tmp.write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []


# --- the cache contract --------------------------------------------------------------------------------


def test_an_entry_records_its_hash_in_its_name_and_reads_back(tmp_path):
    entry = tmp_path / "baselines" / "lenet-abc.pt"
    stored = cache.store(entry, lambda tmp: tmp.write_bytes(b"weights"))
    assert stored is not None and stored.name == f"lenet-abc.{hashlib.sha256(b'weights').hexdigest()[:16]}.pt"
    assert cache.load_verified(entry, bytes) == (b"weights", stored)
    assert cache.load_verified(tmp_path / "baselines" / "other.pt", bytes) is None  # a miss is quiet


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(p.read_bytes()[:3]),  # truncated
        lambda p: p.write_bytes(b"garbage!"),  # replaced
        lambda p: p.write_bytes(b""),  # emptied
    ],
    ids=["truncated", "garbage", "empty"],
)
def test_a_damaged_entry_is_discarded_with_one_warning(tmp_path, caplog, damage):
    entry = tmp_path / "t.cache"
    stored = cache.store(entry, lambda tmp: tmp.write_bytes(b"timing data"))
    assert stored is not None
    damage(stored)
    with caplog.at_level(logging.WARNING, logger="edgekit"):
        assert cache.load_verified(entry, bytes) is None
        assert cache.load_verified(entry, bytes) is None  # gone: the second read is a plain miss
    (line,) = warnings_of(caplog)
    assert line.startswith(f"cache: discarding {stored} (damaged or partial") and "\n" not in line
    assert not stored.exists()


def test_an_intact_entry_the_loader_refuses_is_discarded(tmp_path, caplog):
    entry = tmp_path / "e.bin"
    stored = cache.store(entry, lambda tmp: tmp.write_bytes(b"old format"))

    def load(data: bytes):
        raise ValueError("its tensor names differ from the model's")

    with caplog.at_level(logging.WARNING, logger="edgekit"):
        assert cache.load_verified(entry, load) is None
    assert warnings_of(caplog) == [
        f"cache: discarding {stored} (cannot be loaded: ValueError: its tensor names differ from the model's); "
        "rebuilding it"
    ]


def test_a_newer_entry_supersedes_older_ones_and_the_unhashed_legacy_file(tmp_path):
    entry = tmp_path / "e.bin"
    entry.write_bytes(b"written by an edgekit without hashes")
    first = cache.store(entry, lambda tmp: tmp.write_bytes(b"one"))
    os.utime(first, ns=(1, 1))  # clearly older
    second = cache.store(entry, lambda tmp: tmp.write_bytes(b"two"))
    assert sorted(tmp_path.iterdir()) == [second] and cache.load_verified(entry, bytes) == (b"two", second)


def test_an_unwritable_cache_warns_and_the_run_goes_on(tmp_path, caplog):
    (tmp_path / "file").write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="edgekit"):
        assert cache.store(tmp_path / "file" / "e.bin", lambda tmp: tmp.write_bytes(b"x")) is None
    (line,) = warnings_of(caplog)
    assert line.startswith("cache: could not store e.bin") and "EDGEKIT_CACHE" in line


WRITER = """
import sys, time
from pathlib import Path
from edgekit import cache
entry, fill, rounds, go = Path(sys.argv[1]), sys.argv[2].encode(), int(sys.argv[3]), Path(sys.argv[4])
go.with_name("ready-" + sys.argv[2]).touch()
while not go.exists():  # both writers start together, so their rounds overlap
    time.sleep(0.001)
for i in range(rounds):
    data = fill * (200_000 + i)  # a different size every round: every round is a new entry file
    assert cache.store(entry, lambda tmp: tmp.write_bytes(data)) is not None
"""


def test_two_processes_filling_one_entry_both_succeed_and_readers_never_see_half(tmp_path, caplog):
    entry, go = tmp_path / "cache" / "lenet-key.pt", tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(entry), fill, "100", str(go)], cwd=ROOT, stderr=subprocess.PIPE
        )
        for fill in ("a", "b")
    ]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready-{fill}").exists() for fill in ("a", "b")):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "a writer did not start"
        time.sleep(0.01)
    go.touch()
    seen = set()
    with caplog.at_level(logging.WARNING, logger="edgekit"):
        while any(p.poll() is None for p in procs):
            hit = cache.load_verified(entry, bytes)
            if hit:
                seen.add(hit[0][:1])
        results = [(p.wait(), p.stderr.read().decode()) for p in procs if p.stderr]
        final = cache.load_verified(entry, bytes)
    assert results == [(0, ""), (0, "")]
    assert warnings_of(caplog) == []  # no reader ever met a partial or mispaired entry
    assert final is not None and final[0][:1] in (b"a", b"b") and seen <= {b"a", b"b"}
    assert not [p for p in entry.parent.iterdir() if p.name.endswith(".tmp")]


# --- the baseline cache (train stage) ------------------------------------------------------------------


@pytest.fixture
def small_slice(fmnist_slice):
    """The shipped slice cut to 300 training images: the cache is under test, not the accuracy."""
    fmnist_slice.train = fmnist_slice.train.subset(slice(0, 300))
    return fmnist_slice


def _train(run_dir: Path, data) -> dict:
    """The load and train stages of a 1-epoch LeNet run."""
    from edgekit.artifact import Artifact
    from edgekit.recipe import Recipe
    from edgekit.stages import load, train
    from edgekit.stages.context import Context

    recipe = Recipe()
    recipe.model.name, recipe.train.epochs = "lenet", 1
    run_dir.mkdir()
    ctx, art = Context(recipe, data, run_dir), Artifact(run_dir)
    load.STAGE.run(art, recipe.model, ctx)
    return train.STAGE.run(art, recipe.train, ctx)


def test_a_damaged_baseline_is_retrained_with_one_warning(small_slice, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("EDGEKIT_CACHE", str(tmp_path / "cache"))
    first = _train(tmp_path / "run1", small_slice)
    (entry,) = (tmp_path / "cache" / "baselines").glob("lenet-*.pt")
    assert not first["cached"] and entry.stat().st_mode & 0o044 == 0o044  # readable by group and others
    entry.write_bytes(entry.read_bytes()[:1000])  # truncated (garbage and empty entries: the cache tests above)
    with caplog.at_level(logging.WARNING, logger="edgekit"):
        again = _train(tmp_path / "run2", small_slice)
    assert not again["cached"]  # retrained, and the run went on
    (line,) = warnings_of(caplog)
    assert line.startswith(f"cache: discarding {entry} (damaged or partial")
    third = _train(tmp_path / "run3", small_slice)
    assert third["cached"] and Path(third["cache_file"]).is_file()  # the rebuilt entry is reused


def test_a_damaged_cache_file_of_an_older_edgekit_no_longer_fails_the_run(small_slice, tmp_path, monkeypatch):
    """The reported case: `lenet-<key>.pt` holding garbage made every run exit 2 in the train stage."""
    import edgekit
    from edgekit.recipe import Recipe
    from edgekit.stages import train
    from edgekit.stages.context import Context

    monkeypatch.setenv("EDGEKIT_CACHE", str(tmp_path / "cache"))
    recipe = Recipe()
    recipe.model.name, recipe.train.epochs = "lenet", 1
    model = edgekit.create_model("lenet", num_classes=10, in_chans=1, small_input=True)  # its module is in the key
    key = train.cache_key(Context(recipe, small_slice, tmp_path), recipe.train, model)
    legacy = tmp_path / "cache" / "baselines" / f"lenet-{key}.pt"
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(b"PK\x03\x04 truncated zip")
    assert not _train(tmp_path / "run", small_slice)["cached"]
    assert not legacy.exists() and len(list(legacy.parent.glob(f"lenet-{key}.*.pt"))) == 1


# --- the TensorRT timing cache -------------------------------------------------------------------------


def test_a_damaged_timing_cache_is_discarded_and_saved_again(tmp_path, monkeypatch, caplog):
    from edgekit.backends.tensorrt.builder import build_engine
    from edgekit.backends.tensorrt.options import BuildOptions
    from test_tensorrt import IDENTITY, _onnx

    monkeypatch.setenv("EDGEKIT_CACHE", str(tmp_path / "cache"))
    src = _onnx(tmp_path / "model.int8.onnx", qdq=True)
    info = build_engine(src, tmp_path / "a.engine", BuildOptions(), IDENTITY, trt=fake_tensorrt.make("10.3.0"))
    saved = Path(info["timing_cache"])
    assert saved.parent == tmp_path / "cache" / "tensorrt" and saved.read_bytes().startswith(b"timing:")
    saved.write_bytes(b"timing: flipped bits")
    with caplog.at_level(logging.WARNING, logger="edgekit"):
        again = build_engine(src, tmp_path / "b.engine", BuildOptions(), IDENTITY, trt=fake_tensorrt.make("10.3.0"))
    assert not again["timing_cache_reused"] and len(warnings_of(caplog)) == 1
    third = build_engine(src, tmp_path / "c.engine", BuildOptions(), IDENTITY, trt=fake_tensorrt.make("10.3.0"))
    assert third["timing_cache_reused"]


def test_a_timing_cache_path_the_user_names_stays_a_plain_file(tmp_path):
    from edgekit.backends.tensorrt.builder import build_engine
    from edgekit.backends.tensorrt.options import BuildOptions
    from test_tensorrt import IDENTITY, _onnx

    src = _onnx(tmp_path / "model.int8.onnx", qdq=True)
    mine = tmp_path / "shared" / "trtexec.cache"
    opts = BuildOptions(timing_cache=str(mine))
    assert build_engine(src, tmp_path / "a.engine", opts, IDENTITY, trt=fake_tensorrt.make())["timing_cache"] == str(
        mine
    )
    assert mine.read_bytes().startswith(b"timing:")  # where trtexec --timingCacheFile can read it
