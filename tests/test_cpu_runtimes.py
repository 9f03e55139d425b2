"""The CPU runtimes and what they really run: ONNX Runtime's and OpenVINO's kernels for an int8 file (integer,
not dequantized to float), OpenVINO's rows beside ONNX Runtime's in validate, and the measured
multiply-accumulate peak every CPU row's share is taken of."""

import numpy as np
import onnx
import pytest
import torch

import edgekit
from conftest import SLICE
from edgekit.artifact import Artifact, Role, RunInfo
from edgekit.backends.ort import OrtRunner, kernel_counts, load_session
from edgekit.backends.peak import achieved, mac_peak
from edgekit.recipe import from_dict
from edgekit.stages import validate
from edgekit.stages.context import Context
from test_quant import SIZE, Tiny as Small  # two convolutions and a linear head: three int8 kernels
from zoo_helpers import weights_not_int8


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """model.onnx and model.int8.onnx of Small, calibrated on the shipped Fashion-MNIST slice."""
    from edgekit.data import DataConfig, load_data
    from edgekit.data.arrays import val_arrays

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("cpu_runtimes")
    data = load_data(DataConfig(root=str(SLICE)))
    images, labels = val_arrays(data, 256)
    fp32 = edgekit.export_onnx(Small().eval(), folder / "model.onnx", input_size=SIZE)
    int8 = edgekit.quantize_onnx(fp32, images[:128], folder / "model.int8.onnx")
    return fp32, int8, images, labels


def test_every_weight_of_the_int8_file_is_int8_and_runs_as_an_integer_kernel(files):
    fp32, int8, _, _ = files
    proto = onnx.load(int8)
    assert sum(n.op_type in ("Conv", "Gemm", "MatMul") for n in proto.graph.node) == 3
    assert weights_not_int8(proto) == []
    assert len(weights_not_int8(onnx.load(fp32))) == 3  # the check sees float weights
    # ONNX Runtime's optimized graph: all three as integer kernels (QLinearConv, QGemm), none in float.
    assert kernel_counts(int8) == {"int8": 3, "float": 0, "quantize_dequantize": 2}
    assert kernel_counts(fp32) == {"int8": 0, "float": 3, "quantize_dequantize": 0}


def test_openvino_runs_the_same_files_with_integer_kernels(files):
    pytest.importorskip("openvino", reason="OpenVINO is an extra: pip install 'edgekit[openvino]'")
    from edgekit.backends.openvino_cpu import OpenVinoRunner

    fp32, int8, images, _ = files
    x = images[:64]
    ov, ort = OpenVinoRunner(fp32, 1), OrtRunner(fp32, 1)
    np.testing.assert_allclose(ov.run(x), ort.run(x), atol=1e-4, rtol=1e-4)
    assert ov.run(x[:1]).shape == (1, 10) and ov.run(x[:7]).shape == (7, 10)  # any batch size
    assert ov.kernels() == {"int8": 0, "float": 3}
    # The int8 file's own semantics (Q/DQ computed in float, ONNX Runtime without graph rewrites) is the
    # reference: ONNX Runtime's u8s8 kernels on AVX2 without VNNI (vpmaddubsw) saturate int16 sums and drift
    # from it, on this file by 0.026 of a 0.23 logit scale; OpenVINO stayed within 0.0014.
    ov8 = OpenVinoRunner(int8, 1)
    reference = load_session(int8, 1, optimize=False).run(None, {"input": x})[0]
    assert np.abs(ov8.run(x) - reference).max() < 0.05 * np.abs(reference).max()
    assert ov8.kernels()["int8"] == 3 and ov8.kernels()["float"] == 0


def test_peak_is_measured_and_int8_beats_fp32_per_mac():
    peak = mac_peak(1, 0.2)
    assert peak["fp32"] > 1 and peak["int8"] > peak["fp32"]  # u8s8 GEMM does at least 2 MACs per fp32 one here
    assert achieved(2_000_000_000, 3.0) == pytest.approx(6.0)


def test_validate_rows_carry_kernels_share_of_peak_and_openvino(files, tmp_path, fmnist_slice):
    fp32, int8, _, _ = files
    art = Artifact(tmp_path)
    art.add(Role.ONNX, fp32, 10_000, 500_000)
    art.add(Role.INT8_ONNX, int8, 10_000, 500_000, source=Role.ONNX)
    art.info = RunInfo(model="small", classes=fmnist_slice.classes, mean=[0.286], std=[0.353], input_size=list(SIZE))
    ctx = Context(from_dict({}, "test", {}), fmnist_slice, tmp_path)
    cfg = validate.Config(min_runs=5, min_seconds=0.05, warmup_s=0, rounds=1, val_images=128, gpu="off")
    metrics = validate.run(art, cfg, ctx)
    rows = {r["artifact"]: r for r in art.info.results}
    assert metrics["peak_gmacs"]["int8"] > 0
    for name in ("model.onnx", "model.int8.onnx"):
        r = rows[name]
        assert r["of"] == name and r["gmacs"] == pytest.approx(500_000 * r["throughput_ips"] / 1e9, rel=0.01)
        peak = metrics["peak_gmacs"]["int8" if name.endswith("int8.onnx") else "fp32"]
        assert r["peak_share"] == pytest.approx(r["gmacs"] / peak, rel=0.01, abs=1e-4)
    assert rows["model.int8.onnx"]["kernels"]["int8"] == 3 and rows["model.onnx"]["kernels"]["int8"] == 0
    try:
        import openvino  # noqa: F401
    except ImportError:
        assert not any(r["backend"] == "openvino" for r in rows.values())
        return
    ov = rows["model.int8.onnx (openvino)"]
    assert ov["of"] == "model.int8.onnx" and ov["kernels"]["int8"] == 3
    assert abs(ov["top1"] - rows["model.int8.onnx"]["top1"]) < 0.05
