import pytest
import torch

import edgekit
from edgekit.errors import EdgekitError
from edgekit.metrics import count_params
from edgekit.stages.prune import Config as PruneConfig, prune_model

# torchvision's counts at num_classes=1000, in_chans=3; LeNet-5 from the paper (10 classes, 32x32).
REFERENCE = {
    "mobilenet_v3_small": 2_542_856,
    "mobilenet_v3_large": 5_483_032,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
}


@pytest.mark.parametrize("name,expected", sorted(REFERENCE.items()))
def test_parameter_count_matches_reference(name, expected):
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
    model = edgekit.create_model(name, num_classes=7, in_chans=1, small_input=True).eval()
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


def test_every_call_site_has_its_own_module():
    """A module called twice in forward confuses hooks and graph tools (see ARCHITECTURE.md)."""
    for name in edgekit.list_models():
        model = edgekit.create_model(name, num_classes=10, in_chans=1, small_input=True).eval()
        calls: dict[int, int] = {}
        hooks = [m.register_forward_hook(lambda m, i, o: calls.__setitem__(id(m), calls.get(id(m), 0) + 1)) for m in model.modules()
                 if not list(m.children())]
        model(torch.randn(1, 1, 28, 28))
        for h in hooks:
            h.remove()
        assert max(calls.values()) == 1, name
