"""schema_version in report.json and manifest.json: written first, files without it read as version 0,
a newer version refused in one line that names the file, both versions and the fix."""

import json

import pytest

from edgekit import manifest, pipeline, report
from edgekit.artifact import Artifact, Role, RunInfo, StageRecord
from edgekit.errors import EdgekitError
from edgekit.report_compare import load_run

ROW = {
    "artifact": "model.onnx",
    "role": "onnx",
    "format": "onnx",
    "precision": "fp32",
    "backend": "onnxruntime",
    "params": 10,
    "macs": 100,
    "size_mb": 1.0,
    "top1": 0.9,
    "top5": 1.0,
    "latency_ms": {"p50": 0.1, "p90": 0.1, "p99": 0.1},
    "throughput_ips": 1000.0,
}


@pytest.fixture
def run_dir(tmp_path):
    """A run folder with a manifest and a report, as a finished stage leaves them."""
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    (tmp_path / "recipe.yaml").write_text("model:\n  name: lenet\n")
    art = Artifact(
        tmp_path,
        history=[StageRecord("load", 0.1, {}, {})],
        info=RunInfo(model="lenet", data={"name": "fashion_mnist"}, results=[ROW]),
    )
    art.add(Role.ONNX, tmp_path / "model.onnx", 10, 100)
    manifest.write(art, "0" * 64)
    report.write(art)
    return tmp_path


def _rewrite(path, **changes):
    doc = json.loads(path.read_text())
    doc.update(changes)
    path.write_text(json.dumps({k: v for k, v in doc.items() if v is not None}))


def test_both_files_start_with_their_schema_version(run_dir):
    for name in ("manifest.json", "report.json"):
        doc = json.loads((run_dir / name).read_text())
        assert next(iter(doc)) == "schema_version" and doc["schema_version"] == 1, name
    assert manifest.read(run_dir)["schema_version"] == manifest.SCHEMA_VERSION == 1
    assert load_run(run_dir)["schema_version"] == report.SCHEMA_VERSION == 1


def test_files_without_a_version_read_as_version_0(run_dir):
    _rewrite(run_dir / "manifest.json", schema_version=None)
    _rewrite(run_dir / "report.json", schema_version=None)
    saved = manifest.read(run_dir)
    assert "schema_version" not in saved and manifest.records(saved)[0].name == "load"
    assert manifest.check_schema_version(saved, run_dir / "manifest.json", 1) == 0
    assert load_run(run_dir)["results"][0]["artifact"] == "model.onnx"


@pytest.mark.parametrize("name", ["manifest.json", "report.json"])
def test_a_newer_version_is_refused_in_one_line(run_dir, name):
    _rewrite(run_dir / name, schema_version=2, format="edgekit-run/9")  # newer files may change anything else
    read = manifest.read if name == "manifest.json" else load_run
    with pytest.raises(EdgekitError) as err:
        read(run_dir)
    msg = str(err.value)
    assert "\n" not in msg and str(run_dir / name) in msg
    assert "schema_version 2" in msg and "this edgekit reads (1)" in msg and "upgrade edgekit" in msg


def test_resume_refuses_a_newer_manifest_before_touching_the_run(run_dir):
    _rewrite(run_dir / "manifest.json", schema_version=7)
    with pytest.raises(EdgekitError, match=r"schema_version 7, newer than this edgekit reads \(1\): upgrade"):
        pipeline.resume(run_dir)


@pytest.mark.parametrize("bad", ["1", 1.5, True, -1])
def test_a_version_that_is_not_a_whole_number_is_refused(run_dir, bad):
    _rewrite(run_dir / "manifest.json", schema_version=bad)
    with pytest.raises(EdgekitError, match="invalid schema_version"):
        manifest.read(run_dir)
