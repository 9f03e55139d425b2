"""The TensorRT half where it can run without TensorRT: build options, engine stamps and refusal on a
mismatch, the builder's API calls (through tests/fake_tensorrt.py), the build stage's 'unavailable'
path, and the symmetric Q/DQ file that --target tensorrt produces. Tests marked `tensorrt` or `gpu`
need the real thing and skip cleanly without it."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import fake_tensorrt
from conftest import FAST_SETS, sets
from edgekit.backends.tensorrt import status
from edgekit.backends.tensorrt.builder import build_engine, onnx_facts
from edgekit.backends.tensorrt.options import BuildOptions, network_typing, timing_cache_path
from edgekit.backends.tensorrt.stamp import check_engine, make_stamp, stamp_path, write_stamp
from edgekit.cli import main
from edgekit.config import build
from edgekit.errors import EdgekitError

IDENTITY = {"tensorrt": "10.3.0", "gpu": "Orin (nvgpu)", "compute_capability": "8.7", "l4t": "36.4.0"}
HAVE_TRT = status()[0]


def _onnx(path: Path, qdq: bool) -> Path:
    """A one-conv classifier with a dynamic batch, optionally with Q/DQ on its input (int8, zero point 0)."""
    w = numpy_helper.from_array(np.ones((4, 1, 3, 3), np.float32), "w")
    nodes, conv_in, inits = [], "input", [w]
    if qdq:
        inits += [
            numpy_helper.from_array(np.array(0.05, np.float32), "s"),
            numpy_helper.from_array(np.array(0, np.int8), "z"),
        ]
        nodes += [
            helper.make_node("QuantizeLinear", ["input", "s", "z"], ["q"]),
            helper.make_node("DequantizeLinear", ["q", "s", "z"], ["dq"]),
        ]
        conv_in = "dq"
    nodes.append(helper.make_node("Conv", [conv_in, "w"], ["logits"]))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return path


def test_build_options_are_strict_and_ordered():
    assert BuildOptions().profile((1, 28, 28)) == ((1, 1, 28, 28), (8, 1, 28, 28), (32, 1, 28, 28))
    with pytest.raises(EdgekitError, match="min_batch <= opt_batch <= max_batch"):
        BuildOptions(min_batch=8, opt_batch=4)
    with pytest.raises(EdgekitError, match="unknown key 'max_batchsize'"):
        build(BuildOptions, {"max_batchsize": 4}, "build")
    assert "timing_cache" not in BuildOptions().stamped()  # the cache changes build time, not the engine


def test_typing_is_strong_unless_the_tensorrt10_fp16_flag_is_asked():
    assert network_typing(True, BuildOptions(), "m.onnx") == "strong"
    assert network_typing(True, BuildOptions(fp16=True), "m.onnx") == "weak"
    assert network_typing(False, BuildOptions(), "m.onnx") == "strong"
    with pytest.raises(EdgekitError, match=r"TensorRT 11 removed.*model\.fp16\.onnx"):
        network_typing(False, BuildOptions(fp16=True), "m.onnx")


def test_timing_cache_is_keyed_by_tensorrt_and_gpu(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEKIT_CACHE", str(tmp_path))
    a = timing_cache_path("auto", IDENTITY)
    b = timing_cache_path("auto", {**IDENTITY, "gpu": "NVIDIA H200"})
    assert a.parent == tmp_path / "tensorrt" and a != b and "10.3.0" in a.name
    assert timing_cache_path("", IDENTITY) is None and timing_cache_path("/x/t.cache", IDENTITY) == Path("/x/t.cache")


@pytest.fixture
def stamped(tmp_path):
    src = _onnx(tmp_path / "model.int8.onnx", qdq=True)
    engine = tmp_path / "model.int8.engine"
    engine.write_bytes(b"serialized engine")
    write_stamp(engine, make_stamp(engine, src, IDENTITY, BuildOptions().stamped()))
    return src, engine


def test_a_matching_stamp_is_accepted(stamped):
    src, engine = stamped
    stamp = check_engine(engine, IDENTITY, src)
    assert stamp["onnx"] == "model.int8.onnx" and stamp["options"]["max_batch"] == 32 and stamp["tensorrt"] == "10.3.0"


@pytest.mark.parametrize(
    "key,value,words",
    [
        ("tensorrt", "10.7.0", "TensorRT 10.3.0 (built) vs 10.7.0 (here)"),
        ("gpu", "NVIDIA H200", "GPU Orin (nvgpu) (built) vs NVIDIA H200 (here)"),
        ("compute_capability", "9.0", "compute capability 8.7 (built) vs 9.0 (here)"),
        ("l4t", None, "L4T release 36.4.0 (built) vs None (here)"),
    ],
)
def test_a_mismatched_runtime_is_refused_with_the_difference(stamped, key, value, words):
    src, engine = stamped
    with pytest.raises(EdgekitError) as err:
        check_engine(engine, {**IDENTITY, key: value}, src)
    msg = str(err.value)
    assert words in msg and "rebuild it from model.int8.onnx" in msg and "\n" not in msg


def test_changed_engine_or_onnx_or_missing_stamp_is_refused(stamped, tmp_path):
    src, engine = stamped
    engine.write_bytes(b"serialized engine, truncated")
    with pytest.raises(EdgekitError, match="does not match the hash in its stamp"):
        check_engine(engine, IDENTITY)
    engine.write_bytes(b"serialized engine")
    _onnx(src, qdq=False)
    with pytest.raises(EdgekitError, match=r"another version of model\.int8\.onnx"):
        check_engine(engine, IDENTITY, src)
    stamp_path(engine).write_text("{not json")
    with pytest.raises(EdgekitError, match="not valid JSON"):
        check_engine(engine, IDENTITY)
    stamp_path(engine).unlink()
    with pytest.raises(EdgekitError, match="has no stamp"):
        check_engine(engine, IDENTITY)


def test_the_runner_refuses_a_mismatched_engine_before_loading_tensorrt(stamped):
    from edgekit.backends.tensorrt.runner import TrtRunner

    src, engine = stamped
    with pytest.raises(EdgekitError, match="built for another runtime"):
        TrtRunner(engine, src, identity={**IDENTITY, "tensorrt": "11.4.0"})


def test_onnx_facts(tmp_path):
    facts = onnx_facts(_onnx(tmp_path / "m.onnx", qdq=True))
    assert facts == {"input": "input", "image_shape": (1, 8, 8), "qdq": True}
    assert not onnx_facts(_onnx(tmp_path / "f.onnx", qdq=False))["qdq"]
    (tmp_path / "bad.onnx").write_bytes(b"\x00garbage")
    with pytest.raises(EdgekitError, match="not a readable ONNX file"):
        onnx_facts(tmp_path / "bad.onnx")


def test_builder_tensorrt10_strongly_typed_int8_with_profile_workspace_and_timing_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEKIT_CACHE", str(tmp_path / "cache"))
    src = _onnx(tmp_path / "model.int8.onnx", qdq=True)
    trt = fake_tensorrt.make("10.3.0")
    opts = BuildOptions(min_batch=1, opt_batch=4, max_batch=16, workspace_mb=256, optimization_level=5)
    info = build_engine(src, tmp_path / "model.int8.engine", opts, IDENTITY, trt=trt)
    assert info["typing"] == "strong" and info["flags"] == [] and info["qdq"] and not info["timing_cache_reused"]
    assert ("create_network", 1 << 5) in trt.calls  # the STRONGLY_TYPED creation flag
    assert ("profile", "input", (1, 1, 8, 8), (4, 1, 8, 8), (16, 1, 8, 8)) in trt.calls
    assert ("workspace", "WORKSPACE", 256 << 20) in trt.calls and ("build", 5) in trt.calls
    assert ("set_timing_cache", False) in trt.calls
    assert (tmp_path / "model.int8.engine").read_bytes() == b"ENGINE-10.3.0"
    stamp = check_engine(tmp_path / "model.int8.engine", IDENTITY, src)
    assert stamp["options"] == opts.stamped() and stamp["build"]["typing"] == "strong"
    # A second build loads the saved timing cache; a cache TensorRT cannot read is replaced, not "reused".
    trt_bad = fake_tensorrt.make("10.3.0", cache_readable=False)
    assert not build_engine(src, tmp_path / "bad.engine", opts, IDENTITY, trt=trt_bad)["timing_cache_reused"]
    assert ("create_timing_cache", b"") in trt_bad.calls  # replaced by an empty cache, then saved again
    trt2 = fake_tensorrt.make("10.3.0")
    assert build_engine(src, tmp_path / "again.engine", opts, IDENTITY, trt=trt2)["timing_cache_reused"]
    assert any(c[0] == "create_timing_cache" and c[1].startswith(b"timing:") for c in trt2.calls)


def test_builder_tensorrt10_fp16_flag_is_weak_typing_with_int8_for_qdq(tmp_path):
    src = _onnx(tmp_path / "model.int8.onnx", qdq=True)
    trt = fake_tensorrt.make("10.3.0")
    info = build_engine(src, tmp_path / "e.engine", BuildOptions(fp16=True, timing_cache=""), IDENTITY, trt=trt)
    assert info["typing"] == "weak" and ("flag", "FP16") in trt.calls and ("flag", "INT8") in trt.calls
    assert ("create_network", 0) in trt.calls and info["timing_cache"] is None


def test_builder_tensorrt11_has_no_flags(tmp_path):
    src = _onnx(tmp_path / "model.int8.onnx", qdq=True)
    trt = fake_tensorrt.make("11.4.0", weak_typing=False)
    info = build_engine(
        src, tmp_path / "e.engine", BuildOptions(timing_cache=""), {**IDENTITY, "tensorrt": "11.4.0"}, trt=trt
    )
    assert info["typing"] == "strong" and not [c for c in trt.calls if c[0] == "flag"]
    assert ("create_network", 0) in trt.calls  # strongly typed anyway; the deprecated flag is not passed
    with pytest.raises(EdgekitError, match="TensorRT 11 removed"):
        build_engine(src, tmp_path / "f.engine", BuildOptions(fp16=True, timing_cache=""), IDENTITY, trt=trt)
    assert not (tmp_path / "f.engine").exists()


def test_builder_failures_are_one_line_and_leave_no_engine(tmp_path):
    src = _onnx(tmp_path / "m.onnx", qdq=False)
    with pytest.raises(EdgekitError, match=r"could not parse m\.onnx: In node 3"):
        build_engine(
            src, tmp_path / "m.engine", BuildOptions(timing_cache=""), IDENTITY, trt=fake_tensorrt.make(parse_ok=False)
        )
    with pytest.raises(EdgekitError, match="failed to build an engine"):
        build_engine(
            src, tmp_path / "m.engine", BuildOptions(timing_cache=""), IDENTITY, trt=fake_tensorrt.make(build_ok=False)
        )
    assert not list(tmp_path.glob("m.engine*"))


def test_ort_provider_choice(monkeypatch):
    from edgekit.backends import ort

    assert ort.provider_list("cpu") == ["CPUExecutionProvider"]
    monkeypatch.setattr(ort, "available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(EdgekitError, match=r"no CUDAExecutionProvider.*onnxruntime-gpu"):
        ort.provider_list("cuda")
    monkeypatch.setattr(
        ort,
        "available_providers",
        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
    )
    assert ort.provider_list("tensorrt") == [
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]


def test_gpu_timing_summary_figures():
    from edgekit.backends.gpu_timing import summarize

    s = summarize([0.002] * 9 + [0.004], [1.0] * 10, [0.1] * 10, [0.05] * 10, batch=8, cuda_graph=True)
    assert s["end_to_end_ms"]["p50"] == 2.0 and s["gpu_compute_ms"]["p50"] == 1.0
    assert s["throughput_ips"] == 4000.0 and s["compute_throughput_ips"] == 8000.0 and s["iterations"] == 10


@pytest.mark.skipif(HAVE_TRT, reason="checks the path taken when TensorRT is missing")
def test_build_on_without_tensorrt_is_a_clear_error(tmp_path, capsys):
    from edgekit.tools import build_tensorrt

    with pytest.raises(EdgekitError, match=r"tensorrt: unavailable \(ModuleNotFoundError"):
        build_tensorrt(_onnx(tmp_path / "m.onnx", qdq=True), BuildOptions())
    assert main(["build", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tensorrt: unavailable" in err


FAST = sets({**FAST_SETS, "quantize.calib_images": 128, "quantize.check_drop": "false"})


def _zero_points(path: Path) -> dict[str, np.ndarray]:
    proto = onnx.load(path)
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    kind = lambda n: "weight" if n.input[0] in inits else "activation"  # noqa: E731
    return {
        f"{kind(n)}:{n.op_type}:{n.input[0]}": inits[n.input[2]]
        for n in proto.graph.node
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2
    }


def test_target_tensorrt_gives_symmetric_qdq_that_onnxruntime_runs_at_the_same_accuracy(tmp_path):
    """The issue's bar: zero point 0 (int8) on every activation and weight, ORT accuracy kept; and
    without TensorRT the run says 'tensorrt: unavailable (reason)' instead of failing."""
    out = tmp_path / "artifacts"
    assert (
        main(
            [
                "compress",
                "lenet",
                "--prune",
                "0.3",
                "--int8",
                "--target",
                "tensorrt",
                "--epochs",
                "2",
                "--distill-epochs",
                "1",
                "--output",
                str(out),
                *FAST,
            ]
        )
        == 0
    )
    (run,) = list(out.iterdir())
    zps = _zero_points(run / "model.int8.onnx")
    weights = [k for k in zps if k.startswith("weight:")]
    assert len(weights) >= 4 and len(zps) - len(weights) >= 8  # every conv/linear weight, and the activations
    assert all(z.dtype == np.int8 and not z.any() for z in zps.values()), {
        k: (z.dtype, z) for k, z in zps.items() if z.any() or z.dtype != np.int8
    }
    report = json.loads((run / "report.json").read_text())
    rows = {r["artifact"]: r for r in report["results"]}
    assert abs(rows["model.int8.onnx"]["top1"] - rows["model.onnx"]["top1"]) <= 0.015
    quant = next(s for s in report["stages"] if s["name"] == "quantize")
    assert quant["metrics"]["activation_type"] == "int8 (symmetric)"
    build_stage = next(s for s in report["stages"] if s["name"] == "build")
    if not HAVE_TRT:
        assert build_stage["metrics"]["skipped"].startswith("tensorrt: unavailable (")
        assert "tensorrt: unavailable (" in (run / "report.md").read_text()
        assert report["env"]["tensorrt"].startswith("unavailable (")


def test_build_stage_skips_for_the_cpu_target():
    from types import SimpleNamespace

    from edgekit.recipe import Recipe
    from edgekit.stages import build as build_stage

    ctx = SimpleNamespace(recipe=Recipe())
    assert "target is cpu" in build_stage.skip(None, build_stage.Config(), ctx)
    assert build_stage.skip(None, build_stage.Config(enabled="off"), ctx) == "build.enabled is off"
    assert build_stage.skip(None, build_stage.Config(enabled="on"), ctx) is None


@pytest.mark.tensorrt
@pytest.mark.skipif(not HAVE_TRT, reason="needs TensorRT and a CUDA GPU")
def test_real_engine_matches_onnxruntime(tmp_path):
    """On a machine with TensorRT: build a real engine from a real Q/DQ file and compare with ORT."""
    from edgekit.backends.ort import OrtRunner
    from edgekit.backends.tensorrt.runner import TrtRunner
    from edgekit.tools import build_tensorrt

    src = _onnx(tmp_path / "m.onnx", qdq=True)
    engine, _ = build_tensorrt(src, BuildOptions(max_batch=8, opt_batch=4, timing_cache=""))
    x = np.random.default_rng(0).standard_normal((8, 1, 8, 8)).astype(np.float32)
    got, ref = TrtRunner(engine, src).run(x), OrtRunner(src, 1).run(x)
    assert np.abs(got - ref).max() < 0.1
    assert TrtRunner(engine, src).profile(4, min_s=0.2)["gpu_compute_ms"]["p50"] > 0


def test_validate_adds_onnxruntime_gpu_provider_rows_when_the_build_has_them(monkeypatch, tmp_path):
    """The same ONNX file through the CUDA / TensorRT providers, via the same runner (providers faked)."""

    from edgekit.artifact import Artifact, Role
    from edgekit.backends import ort
    from edgekit.stages import validate

    made = []

    class FakeRunner:
        def __init__(self, path, threads, provider="cpu"):
            made.append(provider)
            self.backend = ort.PROVIDERS[provider][1]

    art = Artifact(tmp_path)
    art.add(Role.INT8_ONNX, _onnx(tmp_path / "model.int8.onnx", qdq=True), 1, 1)
    monkeypatch.setattr(ort, "OrtRunner", FakeRunner)
    monkeypatch.setattr(ort, "available_providers", lambda: ["CPUExecutionProvider"])
    assert validate.ort_gpu_entries(art, validate.Config(), 1, tensorrt_target=True) == []
    monkeypatch.setattr(
        ort,
        "available_providers",
        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
    )
    rows = validate.ort_gpu_entries(art, validate.Config(), 1, tensorrt_target=True)
    assert [e.name for e, _ in rows] == ["model.int8.onnx (onnxruntime-cuda)", "model.int8.onnx (onnxruntime-trt)"]
    assert made == ["cuda", "tensorrt"]
    assert len(validate.ort_gpu_entries(art, validate.Config(), 1, tensorrt_target=False)) == 1
    assert validate.ort_gpu_entries(art, validate.Config(gpu="off"), 1, tensorrt_target=True) == []


def test_an_engine_for_another_runtime_is_never_overwritten(stamped):
    from edgekit.tools import engine_target

    src, engine = stamped  # model.int8.engine, stamped for IDENTITY (an Orin)
    h200 = {**IDENTITY, "gpu": "NVIDIA H200", "compute_capability": "9.0", "tensorrt": "10.7.0", "l4t": None}
    assert engine_target(src, None, IDENTITY) == engine  # same runtime: rebuilt or reused in place
    other = engine_target(src, None, h200)
    assert other.name == "model.int8.nvidia-h200-trt10.7.0.engine" and other.parent == engine.parent
    with pytest.raises(
        EdgekitError, match=r"holds an engine for another runtime .* is kept: give another --engine path"
    ):
        engine_target(src, engine, h200)
    assert engine_target(src, engine.with_name("new.engine"), h200).name == "new.engine"
