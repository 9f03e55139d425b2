"""Every registered model through the pipeline's real steps: prune, ONNX export with parity, int8.

Parametrized over `list_models()`, so a new model is tested for free and none is skipped. Heavy models
run as narrow copies (`width_mult`), which keeps every structural feature (groups, shuffles, concats, SE
gates) while keeping the suite fast on a 2-core CI machine."""

import numpy as np
import pytest
import torch

import edgekit
from edgekit.backends.ort import OrtRunner, kernel_counts
from edgekit.export import to_onnx
from edgekit.metrics import count_params
from edgekit.quant.ptq import PtqSettings
from edgekit.stages.prune import Config as PruneConfig, prune_model
from edgekit.stages.quantize import quantize_onnx
from zoo_helpers import narrow_width, randomize_norms, weights_not_int8

# Largest int8-vs-fp32 logit difference, as a share of the largest fp32 logit, on random inputs drawn like
# the calibration images (per-channel weights, minmax ranges). Every zoo model passes it; a broken int8
# file (a wrong scale, a channel mix-up, a dropped bias) differs by about the logits' whole scale.
INT8_ERROR = 0.25


@pytest.mark.parametrize("name", edgekit.list_models())
def test_prune_export_int8(name, tmp_path):
    torch.manual_seed(0)
    torch.set_num_threads(2)
    model = edgekit.create_model(
        name, num_classes=10, in_chans=3, small_input=True, width_mult=narrow_width(name)
    ).eval()
    randomize_norms(model)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert model(x).shape == (4, 10) and torch.isfinite(model(x)).all()
    pruned = prune_model(model, PruneConfig(ratio=0.3), (3, 32, 32)).eval()
    assert count_params(pruned) < count_params(model)
    assert pruned.get_classifier().out_features == 10
    with torch.no_grad():
        ref = pruned(x).numpy()
    assert ref.shape == (4, 10) and np.abs(ref).max() > 1e-3  # outputs large enough to compare

    import onnx

    onnx.save(to_onnx(pruned, (3, 32, 32), 17, True), tmp_path / "m.onnx")
    got = OrtRunner(tmp_path / "m.onnx", 1).run(x.numpy())
    assert np.abs(ref - got).max() < 1e-4 * max(1.0, np.abs(ref).max())

    calib = np.random.default_rng(0).standard_normal((16, 3, 32, 32)).astype(np.float32)
    quantize_onnx(tmp_path / "m.onnx", tmp_path / "q.onnx", calib, PtqSettings(calib_batch=8))
    q = onnx.load(tmp_path / "q.onnx")
    assert any(n.op_type == "QuantizeLinear" for n in q.graph.node)
    out = OrtRunner(tmp_path / "q.onnx", 1).run(x.numpy())
    assert out.shape == (4, 10) and np.isfinite(out).all()
    # Every weight int8, every convolution and matrix product an integer kernel in ONNX Runtime's
    # optimized graph, and the int8 logits close to their fp32 source's (relative to the logits' scale).
    assert weights_not_int8(q) == []
    counts = kernel_counts(tmp_path / "q.onnx", 1)
    assert counts["float"] == 0 and counts["int8"] > 0, counts
    error = np.abs(out - got).max() / np.abs(got).max()
    assert error < INT8_ERROR, f"int8 logits differ from fp32 by {error:.3f} of their scale"
