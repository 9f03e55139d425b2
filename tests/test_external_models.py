"""`timm:NAME` / `torchvision:NAME`: wrapped in the zoo contract, or a one-line error when missing."""

import sys
import types

import pytest
import torch
from torch import nn

import edgekit
from edgekit.errors import EdgekitError
from edgekit.stages.prune import Config as PruneConfig, prune_model


class TinyTimmNet(nn.Module):
    def __init__(self, num_classes, in_chans):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_chans, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(32, num_classes)

    def forward_features(self, x):
        return self.body(self.stem(x))

    def forward_head(self, x, pre_logits=False):
        x = torch.flatten(self.pool(x), 1)
        return x if pre_logits else self.head(x)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


@pytest.fixture
def fake_timm(monkeypatch):
    import torch_pruning  # noqa: F401  (imported first: it probes for the real timm at import time)

    module = types.ModuleType("timm")
    calls = []

    def create_model(arch, pretrained, num_classes, in_chans):
        calls.append((arch, pretrained))
        return TinyTimmNet(num_classes, in_chans)

    module.create_model = create_model
    monkeypatch.setitem(sys.modules, "timm", module)
    return calls


def test_timm_model_follows_the_contract_and_prunes(fake_timm):
    model = edgekit.create_model("timm:tiny", num_classes=5, in_chans=1).eval()
    assert fake_timm == [("tiny", False)]  # never downloads weights
    x = torch.randn(2, 1, 28, 28)
    assert model(x).shape == (2, 5)
    assert model.get_classifier() is model.net.head
    assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, 32)
    pruned = prune_model(model, PruneConfig(ratio=0.3), (1, 28, 28))
    assert pruned.get_classifier().out_features == 5 and pruned(x).shape == (2, 5)
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in model.parameters())


def test_missing_library_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import fails as if not installed
    with pytest.raises(EdgekitError, match="needs torchvision, which is not installed: pip install torchvision"):
        edgekit.create_model("torchvision:resnet18")
