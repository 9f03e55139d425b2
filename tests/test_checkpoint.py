import pickle

import pytest
import torch

import edgekit
from edgekit.checkpoint import load_weights, save_state_dict
from edgekit.errors import EdgekitError
from edgekit.stages.prune import Config, prune_model

SIZE = (1, 28, 28)


def _model():
    torch.manual_seed(0)
    return edgekit.create_model("mobilenet_v3_small", num_classes=10, in_chans=1, small_input=True).eval()


def test_pruned_checkpoint_loads_into_unpruned_architecture(tmp_path):
    pruned = prune_model(_model(), Config(ratio=0.3), SIZE)
    save_state_dict(pruned, tmp_path / "p.pt")
    fresh = _model()
    load_weights(fresh, tmp_path / "p.pt", "mobilenet_v3_small", SIZE)
    x = torch.randn(3, *SIZE)
    assert torch.allclose(fresh.eval()(x), pruned(x), atol=1e-6)


class Payload:
    def __reduce__(self):
        return (print, ("code ran",))


@pytest.mark.parametrize(
    "writer,message",
    [
        (lambda p: p.write_bytes(b"hello"), "not a readable PyTorch checkpoint"),
        (lambda p: torch.save({"a": 1}, p), "holds no state_dict"),
        (lambda p: p.write_bytes(pickle.dumps(Payload())), "not a readable PyTorch checkpoint"),
        (lambda p: torch.save({"x": Payload()}, p), "refused by weights_only"),
    ],
)
def test_bad_checkpoints(tmp_path, writer, message):
    path = tmp_path / "bad.pt"
    writer(path)
    with pytest.raises(EdgekitError, match=message):
        load_weights(_model(), path, "mobilenet_v3_small", SIZE)


def test_truncated_checkpoint(tmp_path):
    path = tmp_path / "t.pt"
    save_state_dict(_model(), path)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(EdgekitError, match="not a readable PyTorch checkpoint"):
        load_weights(_model(), path, "mobilenet_v3_small", SIZE)


def test_wrong_architecture_and_class_count(tmp_path):
    path = tmp_path / "r.pt"
    save_state_dict(edgekit.create_model("resnet18", num_classes=10, in_chans=1), path)
    with pytest.raises(EdgekitError, match="does not match model mobilenet_v3_small"):
        load_weights(_model(), path, "mobilenet_v3_small", SIZE)
    save_state_dict(edgekit.create_model("mobilenet_v3_small", num_classes=5, in_chans=1), path)
    with pytest.raises(EdgekitError, match="does not match"):
        load_weights(_model(), path, "mobilenet_v3_small", SIZE)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(EdgekitError, match="does not exist"):
        load_weights(_model(), tmp_path / "nope.pt", "m", SIZE)


def test_create_model_loads_weights_and_refits_another_class_count(tmp_path):
    """torchvision's key layout is the zoo's: a 1000-class ImageNet-shaped state_dict starts a 10-class
    model, loaded strictly except the classifier, which stays freshly initialised."""
    torch.manual_seed(0)
    imagenet = edgekit.create_model("resnet18", num_classes=1000)
    save_state_dict(imagenet, tmp_path / "in1k.pt")
    for weights in (imagenet.state_dict(), tmp_path / "in1k.pt"):
        model = edgekit.create_model("resnet18", num_classes=10, weights=weights)
        own, given = model.state_dict(), imagenet.state_dict()
        assert all(torch.equal(own[k], given[k]) for k in own if not k.startswith("fc."))
        assert own["fc.weight"].shape == (10, 512)
    with pytest.raises(EdgekitError, match="does not match model resnet34"):
        edgekit.create_model("resnet34", num_classes=10, weights=imagenet.state_dict())
