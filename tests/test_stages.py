"""Stage-level behaviour on real (sliced) Fashion-MNIST: prune, distillation loss, export, quantize."""

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import numpy_helper

import edgekit
from edgekit.artifact import Artifact, Role, RunInfo
from edgekit.data.transforms import normalize
from edgekit.distill import kd_loss
from edgekit.errors import EdgekitError, StageFailed
from edgekit.export import onnx_file
from edgekit.metrics import count_macs
from edgekit.recipe import Recipe
from edgekit.stages import export, prune, quantize
from edgekit.stages.context import Context

SIZE = (1, 28, 28)


def _export(name, tmp_path, data):
    """A zoo model exported through the export stage (random weights, real data)."""
    torch.manual_seed(0)
    model = edgekit.create_model(name, num_classes=10, in_chans=1, small_input=True).eval()
    art = Artifact(tmp_path)
    art.add(Role.BASELINE, tmp_path / "b.pt", 0, 0, module=model)
    art.info = RunInfo(model=name, classes=data.classes, mean=[0.286], std=[0.353], input_size=list(SIZE))
    ctx = Context(Recipe(), data, tmp_path)
    metrics = export.run(art, export.Config(parity_images=64), ctx)
    return art, ctx, metrics


@pytest.fixture
def exported(tmp_path, fmnist_slice):
    return _export("mobilenet_v3_small", tmp_path, fmnist_slice)


@pytest.fixture
def exported_lenet(tmp_path, fmnist_slice):
    """Few activation tensors: ORT's entropy search is pure Python and slow on big graphs."""
    return _export("lenet5", tmp_path, fmnist_slice)


def test_prune_rounds_channels_and_cuts_macs():
    model = edgekit.create_model("mobilenet_v3_small", num_classes=10, in_chans=1, small_input=True).eval()
    pruned = prune.prune_model(model, prune.Config(ratio=0.3, round_to=8), SIZE)
    convs = [m for m in pruned.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(m.out_channels % 8 == 0 for m in convs)
    assert count_macs(pruned, SIZE) < 0.65 * count_macs(model, SIZE)
    assert pruned.get_classifier().out_features == 10


def test_kd_loss():
    s, t, y = torch.randn(8, 10), torch.randn(8, 10), torch.randint(0, 10, (8,))
    assert torch.allclose(kd_loss(s, t, y, 4.0, 0.0), F.cross_entropy(s, y))
    assert torch.allclose(kd_loss(s, s, y, 4.0, 1.0), torch.tensor(0.0), atol=1e-6)
    assert kd_loss(s, t, y, 4.0, 1.0) > 0


def test_export_parity_and_metadata(exported):
    art, ctx, metrics = exported
    m = metrics["model.onnx"]
    assert m["max_abs_diff"] < 1e-4 and m["top1_agreement"] == 1.0
    proto = onnx.load(art[Role.ONNX].path)
    assert proto.opset_import[0].version >= 17
    meta = {p.key: p.value for p in proto.metadata_props}
    assert {"edgekit_version", "model", "class_names", "input_size", "normalization"} <= set(meta)
    assert proto.graph.input[0].name == "input" and proto.graph.output[0].name == "logits"
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert not list(Path(ctx.run_dir).glob("*.onnx.data"))


def test_export_parity_failure_fails_the_stage(exported, monkeypatch):
    art, ctx, _ = exported
    monkeypatch.setattr(
        onnx_file, "parity", lambda *a: {"max_abs_diff": 0.5, "max_abs_logit": 3.0, "top1_agreement": 0.5}
    )
    with pytest.raises(EdgekitError, match="parity check failed"):
        export.export_entry(
            art, art[Role.BASELINE], Role.BASELINE_ONNX, export.Config(), ctx, np.zeros((2, *SIZE), np.float32)
        )
    assert not (ctx.run_dir / "baseline.onnx").exists() and Role.BASELINE_ONNX not in art


@pytest.mark.parametrize(("logit", "passes"), [(20.0, True), (1.0, False)])
def test_export_parity_bound_grows_with_the_logits_scale(exported, monkeypatch, logit, passes):
    """1.5e-3 of float noise is within 1e-3 + 1e-4 x 20 for logits near 20, not for logits near 1."""
    art, ctx, _ = exported
    check = {"max_abs_diff": 1.5e-3, "max_abs_logit": logit, "top1_agreement": 1.0}
    monkeypatch.setattr(onnx_file, "parity", lambda *a: dict(check))
    run = lambda: export.export_entry(  # noqa: E731
        art, art[Role.BASELINE], Role.BASELINE_ONNX, export.Config(), ctx, np.zeros((2, *SIZE), np.float32)
    )
    if passes:
        assert run()["baseline.onnx"]["allowed_diff"] == pytest.approx(3e-3)
    else:
        with pytest.raises(StageFailed, match=r"allowed 1\.10e-03 = 0\.001 \+ 0\.0001 x max \|logit\|\)") as err:
            run()
        assert err.value.exit_code == 1  # the export failed its check: not bad input


def _activation_scales(path):
    proto = onnx.load(path)
    weights = {i.name for i in proto.graph.initializer if i.data_type == onnx.TensorProto.INT8}
    out = {}
    for node in proto.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] not in weights:
            init = {i.name: i for i in proto.graph.initializer}
            out[node.input[0]] = (
                numpy_helper.to_array(init[node.input[1]]),
                numpy_helper.to_array(init[node.input[2]]) if len(node.input) > 2 else None,
            )
    return out


def test_quantize_cpu_and_tensorrt_forms(exported):
    art, ctx, _ = exported
    src = art[Role.ONNX].path
    images = quantize.train_order(ctx, quantize.Config(calib_images=64)).calibration()
    cpu = ctx.run_dir / "cpu.onnx"
    trt = ctx.run_dir / "trt.onnx"
    quantize.quantize_onnx(src, cpu, images, quantize.settings(quantize.Config(calib_images=64), "cpu"))
    quantize.quantize_onnx(src, trt, images, quantize.settings(quantize.Config(calib_images=64), "tensorrt"))
    cpu_scales, trt_scales = _activation_scales(cpu), _activation_scales(trt)
    assert cpu_scales and trt_scales
    assert all(zp.dtype == np.uint8 for _, zp in cpu_scales.values())
    assert all(zp.dtype == np.int8 and (zp == 0).all() for _, zp in trt_scales.values())  # symmetric S8
    types = {n.op_type for n in onnx.load(trt).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= types
    from edgekit.backends.ort import OrtRunner

    logits = OrtRunner(cpu, 1).run(images[:8])
    assert logits.shape == (8, 10) and np.isfinite(logits).all()


def test_each_calibration_method_changes_the_scales(exported_lenet):
    """ORT's quantize_static gave entropy == minmax; edgekit calibrates itself so the choice matters."""
    art, ctx, _ = exported_lenet
    src = art[Role.ONNX].path
    images = quantize.train_order(ctx, quantize.Config(calib_images=64)).calibration()
    scales = {}
    for method in ("minmax", "entropy", "percentile"):
        dst = ctx.run_dir / f"{method}.onnx"
        quantize.quantize_onnx(
            src, dst, images, quantize.settings(quantize.Config(calibration=method, calib_images=64), "cpu")
        )
        scales[method] = _activation_scales(dst)
    for method in ("entropy", "percentile"):
        differ = sum(not np.allclose(scales[method][k][0], scales["minmax"][k][0]) for k in scales["minmax"])
        assert differ >= len(scales["minmax"]) // 4, method


def test_calibration_uses_training_images_only(fmnist_slice, tmp_path):
    ctx = Context(Recipe(), fmnist_slice, tmp_path)
    images = quantize.train_order(ctx, quantize.Config(calib_images=100)).calibration()
    train = (
        normalize(fmnist_slice.train.images, fmnist_slice.mean, fmnist_slice.std)
        .numpy()
        .reshape(len(fmnist_slice.train), -1)
    )
    flat = images.reshape(100, -1)
    hits = (np.abs(train[None, :, :] - flat[:, None, :]).max(-1) < 1e-6).any(1)
    assert hits.all()
