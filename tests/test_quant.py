"""Quantization quality: per-layer sensitivity and mixed precision, QAT, fp16 export (real ONNX Runtime)."""

import numpy as np
import onnx
import pytest
import torch
from torch import nn

import edgekit
from conftest import SLICE
from edgekit.artifact import Artifact, Role, RunInfo
from edgekit.backends.ort import OrtRunner
from edgekit.recipe import Recipe, from_dict
from edgekit.stages import export, quantize
from edgekit.stages.context import Context

SIZE = (1, 28, 28)


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.fc = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x):
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.fc(x.flatten(1))


def _train(model, data, steps=60, lr=3e-3):
    """Plain full-speed training on the slice (no augmentation): enough for a model well above chance."""
    from edgekit.data.transforms import normalize

    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    x_all = normalize(data.train.images, data.mean, data.std)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x_all), (128,), generator=gen)
        loss = nn.functional.cross_entropy(model(x_all[idx]), data.train.labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def _artifact(model, tmp_path, data, name="tiny", **sets):
    """An Artifact holding `model` as the baseline, and a Context whose recipe has the dotted `sets`."""
    art = Artifact(tmp_path)
    art.add(Role.BASELINE, tmp_path / "b.pt", 0, 0, module=model.eval())
    art.info = RunInfo(model=name, classes=data.classes, mean=[0.286], std=[0.353], input_size=list(SIZE))
    return art, Context(from_dict({}, "test", sets), data, tmp_path)


@pytest.fixture(scope="module")
def slice_data():
    from edgekit.data import DataConfig, load_data

    return load_data(DataConfig(root=str(SLICE)))


@pytest.fixture(scope="module")
def outlier_model(slice_data):
    """A trained tiny CNN with a weight outlier in conv2 that the float model never sees: conv1's
    channel 0 is made dead (zero weights, negative bias: ReLU outputs exactly 0) and conv2's weights
    reading it are set to 1000x its largest weight. conv2's per-channel int8 scales are then set by the
    outliers and its real weights round to zero: conv2 is genuinely harmful in int8, the rest is not."""
    torch.manual_seed(0)
    model = _train(Tiny(), slice_data, steps=30)
    with torch.no_grad():
        model.conv1.weight[0] = 0
        model.conv1.bias[0] = -1
        model.conv2.weight[:, 0] = 1000 * model.conv2.weight.abs().max()
    return model.eval()


def test_sensitivity_keeps_the_harmful_layer_in_float(outlier_model, fmnist_slice, tmp_path):
    art, ctx = _artifact(outlier_model, tmp_path, fmnist_slice, **{"gate.max_drop": 0.5, "qat.mode": "off"})
    export.run(art, export.Config(parity_images=64, parity_atol=1e-2), ctx)
    cfg = quantize.Config(enabled=True, calib_images=64, sensitivity_images=500)
    m = quantize.run(art, cfg, ctx)
    assert m["int8_drop"] > 5  # the outlier really hurts plain int8
    mixed = m["mixed_precision"]
    ranking = [r["layer"] for r in mixed["ranking"]]
    assert "conv2" in ranking[0].lower()
    kept = [f["layer"] for f in m["float_layers"]]
    assert kept and "conv2" in kept[0].lower()
    assert mixed["drop_after"] < mixed["drop_before"] and m["final_drop"] == mixed["drop_after"]
    assert m["held_out_split"].startswith("train")
    # The float layer really is float in the written file: its weight is a float initializer.
    proto = onnx.load(art[Role.INT8_ONNX].path)
    node = next(n for n in proto.graph.node if n.name == kept[0])
    inits = {i.name: i for i in proto.graph.initializer}
    assert inits[node.input[1]].data_type == onnx.TensorProto.FLOAT
    assert OrtRunner(art[Role.INT8_ONNX].path, 1).run(np.zeros((2, *SIZE), np.float32)).shape == (2, 10)


def test_no_drop_check_skips_the_analysis(outlier_model, fmnist_slice, tmp_path):
    art, ctx = _artifact(outlier_model, tmp_path, fmnist_slice)
    export.run(art, export.Config(parity_images=64, parity_atol=1e-2), ctx)
    m = quantize.run(art, quantize.Config(enabled=True, calib_images=64, check_drop=False), ctx)
    assert "int8_drop" not in m and "mixed_precision" not in m and "qat" not in m
    assert art[Role.INT8_ONNX].path.is_file()


def test_held_out_images_are_disjoint_from_calibration(fmnist_slice, tmp_path):
    ctx = Context(Recipe(), fmnist_slice, tmp_path)
    cfg = quantize.Config(calib_images=100, sensitivity_images=300)
    calib = quantize.train_order(ctx, cfg).calibration().reshape(100, -1)
    held, labels = quantize.train_order(ctx, cfg).held_out()
    assert len(held) == len(labels) == 300
    same = np.abs(held.reshape(300, -1)[:, None] - calib[None]).max(-1) < 1e-6
    # Fashion-MNIST has a few duplicate images; distinct indices may still match pixel for pixel, but rarely.
    assert same.any(1).sum() <= 2


def test_qat_runs_and_gives_a_qdq_model(tmp_path):
    from edgekit.data import DataConfig, load_data

    data = load_data(DataConfig(root=str(SLICE), train_limit=512))  # QAT: 4 steps of 128
    torch.manual_seed(0)
    model = edgekit.create_model("lenet5", num_classes=10, in_chans=1, small_input=True)
    _train(model, data, steps=20)
    art, ctx = _artifact(model, tmp_path, data, "lenet5", **{"qat.mode": "on", "qat.lr": 1e-3})
    export.run(art, export.Config(parity_images=64), ctx)
    before = model.c3.weight.detach().clone()
    m = quantize.run(art, quantize.Config(enabled=True, calib_images=64, sensitivity_images=200), ctx)
    qat = m["qat"]
    assert qat["fake_quant_layers"] == 5 and np.isfinite(qat["final_loss"]) and "drop" in qat
    assert torch.equal(model.c3.weight, before)  # the pipeline's model is untouched, QAT tuned a copy
    path = art[Role.INT8_ONNX].path
    types = {n.op_type for n in onnx.load(path).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= types
    assert m["chosen"] in ("int8", "qat")
    out = OrtRunner(path, 1).run(quantize.train_order(ctx, quantize.Config(calib_images=8)).calibration())
    assert out.shape == (8, 10) and np.isfinite(out).all()


def test_fake_quant_weight_grid_matches_ort_symmetric_per_channel():
    from edgekit.quant.qat import FakeQuant

    conv = nn.Conv2d(3, 4, 3)
    fq = FakeQuant(conv, per_channel=True, symmetric_act=False)
    w = fq.weight_fq().detach()
    scale = conv.weight.detach().abs().flatten(1).amax(1) / 127
    q = w / scale[:, None, None, None]
    assert torch.allclose(q, q.round(), atol=1e-3) and q.abs().max() <= 127 + 1e-3
    # Scaling an output channel (what folding BatchNorm does) scales its quantized weights the same way.
    c = torch.tensor([2.0, -0.5, 3.0, 1.0])[:, None, None, None]
    conv2 = nn.Conv2d(3, 4, 3)
    with torch.no_grad():
        conv2.weight.copy_(conv.weight * c)
    assert torch.allclose(FakeQuant(conv2, True, False).weight_fq().detach(), w * c, atol=1e-6)


def test_fp16_export(fmnist_slice, tmp_path):
    torch.manual_seed(0)
    model = edgekit.create_model(
        "mobilenet_v3_small", num_classes=10, in_chans=1, small_input=True, width_mult=0.5
    ).eval()
    art, ctx = _artifact(model, tmp_path, fmnist_slice, "mobilenet_v3_small")
    m = export.run(art, export.Config(parity_images=32, fp16=True), ctx)
    entry = art[Role.FP16_ONNX]
    assert entry.precision == "fp16" and entry.format == "onnx"
    proto = onnx.load(entry.path)
    onnx.checker.check_model(proto, full_check=True)
    floats = [i for i in proto.graph.initializer if i.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)]
    assert floats and all(i.data_type == onnx.TensorProto.FLOAT16 for i in floats)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert proto.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert {p.key for p in proto.metadata_props} >= {"model", "normalization"}
    x = quantize.train_order(ctx, quantize.Config(calib_images=16)).calibration()
    ref = OrtRunner(art[Role.ONNX].path, 1).run(x)
    got = OrtRunner(entry.path, 1).run(x)
    assert got.dtype == np.float32 and np.abs(got - ref).max() < 1e-2
    assert m["model.fp16.onnx"]["max_abs_diff"] < 1e-2


def test_float_variant_matches_real_exclusion(outlier_model, slice_data, tmp_path):
    """The cheap per-layer score edits one int8 graph; it should compute what re-quantizing with
    nodes_to_exclude=[node] computes (both run unoptimized: the Q/DQ semantics)."""
    from edgekit.quant.ptq import Quantizer
    from edgekit.quant.sensitivity import float_variant, logits_of, quantized_nodes

    art, ctx = _artifact(outlier_model, tmp_path, slice_data)
    export.run(art, export.Config(parity_images=64, parity_atol=1e-2), ctx)
    cfg = quantize.Config(calib_images=64)
    x = quantize.train_order(ctx, quantize.Config(calib_images=64, sensitivity_images=200)).held_out()[0]
    src = art[Role.ONNX].path
    with Quantizer(src, quantize.train_order(ctx, cfg).calibration(), quantize.settings(cfg, "cpu"), tmp_path) as q:
        q.quantize(tmp_path / "plain.onnx")
        int8, fp32 = onnx.load(tmp_path / "plain.onnx"), onnx.load(src)
        plain = logits_of(int8, x, optimize=False)
        names = quantized_nodes(int8)
        assert len(names) == 3
        for name in names:
            q.quantize(tmp_path / "ex.onnx", [name])
            real = logits_of(tmp_path / "ex.onnx", x, optimize=False)
            variant = logits_of(float_variant(int8, fp32, name), x, optimize=False)
            scale = np.abs(real).max()
            assert np.abs(variant - real).max() < 0.05 * scale, name
            if "conv2" in name:  # the harmful layer: the variant removes most of the int8 error
                assert np.abs(variant - real).max() < 0.5 * np.abs(plain - real).max()


def test_no_held_out_images_left_skips_the_check(outlier_model, slice_data, tmp_path):
    art, ctx = _artifact(outlier_model, tmp_path, slice_data)
    export.run(art, export.Config(parity_images=64, parity_atol=1e-2), ctx)
    m = quantize.run(art, quantize.Config(enabled=True, calib_images=len(slice_data.train), calib_batch=500), ctx)
    assert m["int8_check"].startswith("skipped") and art[Role.INT8_ONNX].path.is_file()


def test_bypassing_a_relu_folded_pair_keeps_the_relu(slice_data, tmp_path):
    """ORT's quantizer folds a Relu into the Q/DQ pair after a Conv (zero point at the type's minimum);
    keeping that tensor in float must keep the Relu, or the float model is no longer the same function."""
    from edgekit.quant.sensitivity import bypass_activations, logits_of

    torch.manual_seed(0)
    art, ctx = _artifact(_train(Tiny(), slice_data, steps=20), tmp_path, slice_data)
    export.run(art, export.Config(parity_images=32), ctx)
    quantize.run(art, quantize.Config(enabled=True, calib_images=64, check_drop=False), ctx)
    int8 = onnx.load(str(tmp_path / "model.int8.onnx"))
    assert "Relu" not in {n.op_type for n in int8.graph.node}  # folded by the quantizer
    inits = {i.name for i in int8.graph.initializer}
    acts = [n.input[0] for n in int8.graph.node if n.op_type == "QuantizeLinear" and n.input[0] not in inits]
    assert bypass_activations(int8, acts) == len(acts)
    assert {n.op_type for n in int8.graph.node} >= {"Relu"}
    x = quantize.train_order(ctx, quantize.Config(calib_images=64, sensitivity_images=200)).held_out()[0]
    fp32 = logits_of(tmp_path / "model.onnx", x)
    # only weights are int8 now: close to fp32 (before the Relu fix, bypassing removed the Relus)
    assert np.abs(logits_of(int8, x) - fp32).max() < 0.5


def test_mixed_precision_rescues_an_unbalanced_block(slice_data, tmp_path):
    """bench/unbalance.py's construction: the same fp32 function with conv1's channel ranges spread
    64x each way (conv2's input weights compensate). Plain int8 breaks on that tensor; forward selection
    must keep conv2 (whose float input is that tensor) in float and bring the logits back to fp32."""
    import sys

    from edgekit.quant.ptq import Quantizer
    from edgekit.quant.sensitivity import HeldOut, logits_of, mixed_precision

    sys.path.insert(0, str(SLICE.parent.parent.parent))
    from bench.unbalance import unbalance

    torch.manual_seed(0)
    art, ctx = _artifact(_train(Tiny(), slice_data, steps=60), tmp_path, slice_data)
    export.run(art, export.Config(parity_images=32), ctx)
    proto, touched = unbalance(onnx.load(str(tmp_path / "model.onnx")), blocks=1, spread=64.0)
    src = tmp_path / "unbalanced.onnx"
    onnx.save(proto, str(src))
    cfg = quantize.Config(enabled=True, calib_images=128, sensitivity_images=500)
    x, y = quantize.train_order(ctx, cfg).held_out()
    held = HeldOut(x, y, logits_of(src, x))
    assert np.abs(held.ref_logits - logits_of(tmp_path / "model.onnx", x)).max() < 1e-3  # same fp32 function
    with Quantizer(src, quantize.train_order(ctx, cfg).calibration(), quantize.settings(cfg, "cpu"), tmp_path) as q:
        q.quantize(tmp_path / "plain.onnx")
        plain = logits_of(tmp_path / "plain.onnx", x)
        r = mixed_precision(
            q,
            tmp_path / "mixed.onnx",
            tmp_path / "plain.onnx",
            src,
            held,
            held.drop(plain),
            max_drop=0.0,
            max_float_layers=2,
        )
    with Quantizer(
        tmp_path / "model.onnx", quantize.train_order(ctx, cfg).calibration(), quantize.settings(cfg, "cpu"), tmp_path
    ) as q:
        q.quantize(tmp_path / "balanced.onnx")
    assert held.mse(plain) > 10 * held.mse(
        logits_of(tmp_path / "balanced.onnx", x)
    )  # the construction is what breaks int8
    assert r["steps"][1]["added"] == touched[1]  # conv2: reads the unbalanced tensor
    assert r["steps"][1]["logit_mse"] < held.mse(plain) / 10
    assert r["drop_after"] <= r["drop_before"] and (tmp_path / "mixed.onnx").is_file()


@pytest.mark.parametrize("method", ["minmax", "entropy"])
def test_calibration_in_chunks_matches_one_pass(method, slice_data, tmp_path, monkeypatch):
    """Calibration reads its images in chunks so the histogram calibrators' memory stays bounded at
    224 px; the ranges must be those of one pass over all images (minmax exactly, entropy within the
    histogram's rebinning)."""
    from edgekit.export.onnx_file import save_onnx, to_onnx
    from edgekit.quant import ptq

    torch.manual_seed(0)
    path = tmp_path / "tiny.onnx"
    save_onnx(to_onnx(Tiny().eval(), SIZE, 17, simplify=False), path)
    images = np.random.default_rng(0).standard_normal((100, *SIZE)).astype(np.float32)
    cfg = ptq.PtqSettings(calibration=method, calib_batch=10)

    def ranges(chunk: int) -> dict[str, np.ndarray]:
        monkeypatch.setattr(ptq, "CALIB_CHUNK", chunk)
        scratch = tmp_path / f"scratch{chunk}"
        scratch.mkdir()
        _, data = ptq.calibrate(path, images, cfg, scratch, ptq.CPU_OP_TYPES)
        return {k: np.asarray(v.range_value, dtype=np.float64) for k, v in data.items()}

    whole, chunked = ranges(10_000), ranges(20)
    assert whole.keys() == chunked.keys() and len(whole) >= 4
    for name in whole:
        if method == "minmax":
            np.testing.assert_array_equal(whole[name], chunked[name], err_msg=name)
        else:
            np.testing.assert_allclose(whole[name], chunked[name], rtol=0.05, atol=0.02, err_msg=name)


def test_unmet_max_drop_fails_the_stage(outlier_model, fmnist_slice, tmp_path):
    """Two harmful layers and room to keep one in float: the int8 drop stays above gate.max_drop, and the
    stage says so as a failure (the pipeline turns it into exit code 1), not as a printed line."""
    model = Tiny()
    model.load_state_dict(outlier_model.state_dict())
    with torch.no_grad():  # conv2's channel 0 dead as well, and fc's weights reading it made outliers
        model.conv2.weight[0] = 0
        model.conv2.bias[0] = -1
        model.fc.weight.view(10, 32, 7, 7)[:, 0] = 1000 * model.fc.weight.abs().max()
    art, ctx = _artifact(model.eval(), tmp_path, fmnist_slice, **{"gate.max_drop": 0.5, "qat.mode": "off"})
    export.run(art, export.Config(parity_images=64, parity_atol=1e-2), ctx)
    cfg = quantize.Config(enabled=True, calib_images=64, sensitivity_images=500, max_float_layers=1)
    m = quantize.run(art, cfg, ctx)
    assert not m["met_max_drop"] and m["final_drop"] > 0.5
    assert m["failed"].startswith("model.int8.onnx: held-out top-1 drop") and "gate.max_drop=0.5" in m["failed"]


@pytest.mark.parametrize("target", ["cpu", "tensorrt"])
def test_older_onnxruntime_gets_the_same_ranges(target, tmp_path, monkeypatch):
    """ORT before 1.31 (the releases with Python 3.10 wheels, as on the Jetson image) has no
    calibration_cache_path: edgekit hands quantize_static its ranges through a stand-in calibrator, and
    the int8 model is the same one, byte for byte, as through the cache."""
    from edgekit.export.onnx_file import save_onnx, to_onnx
    from edgekit.quant import ptq

    torch.manual_seed(0)
    path = tmp_path / "tiny.onnx"
    save_onnx(to_onnx(Tiny().eval(), SIZE, 17, simplify=False), path)
    images = np.random.default_rng(0).standard_normal((64, *SIZE)).astype(np.float32)
    cfg = ptq.PtqSettings(calibration="entropy", calib_batch=16, target=target)

    def quantized(name: str) -> bytes:
        with ptq.Quantizer(path, images, cfg, tmp_path) as q:
            q.quantize(tmp_path / name)
        return (tmp_path / name).read_bytes()

    through_cache = quantized("cache.onnx")
    monkeypatch.setattr(ptq, "takes_calibration_cache", lambda: False)
    import importlib

    ort_quantize = importlib.import_module("onnxruntime.quantization.quantize")
    original = ort_quantize.create_calibrator
    given = quantized("given.onnx")
    assert ort_quantize.create_calibrator is original  # restored after the call
    assert given == through_cache
    assert any(n.op_type == "QuantizeLinear" for n in onnx.load(tmp_path / "given.onnx").graph.node)
