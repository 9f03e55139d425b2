"""torchvision state_dict files load into the zoo and give the same outputs.

tests/data/torchvision_reference.json was made with torchvision (tests/tools/make_tv_reference.py): for
each model, the digest of its state_dict keys and shapes and its logits under deterministic weights. Here
the edgekit model must have the same keys and shapes in the same order (so a torchvision file loads with
strict=True) and, given the same weights, compute the same logits. DenseNet files from torchvision use
old-style keys (`norm.1`); `densenet_tv_key_map` renames them, as torchvision's own loader does."""

import json
from pathlib import Path

import pytest
import torch

import edgekit
from tv_reference import deterministic_state, keys_digest, reference_input

REFERENCE = json.loads((Path(__file__).parent / "data" / "torchvision_reference.json").read_text())["models"]


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_same_keys_and_same_outputs_as_torchvision(name):
    ref = REFERENCE[name]
    model = edgekit.create_model(name).eval()
    state = model.state_dict()
    assert len(state) == ref["num_keys"]
    assert keys_digest(state) == ref["keys"], "state_dict keys or shapes differ from torchvision's"
    model.load_state_dict(deterministic_state(state), strict=True)
    torch.set_num_threads(2)
    with torch.no_grad():
        logits = model(reference_input())
    expected = torch.tensor(ref["logits"])
    tol = 1e-4 * max(1.0, ref["logits_abs_max"])
    assert (logits[:, :16] - expected).abs().max().item() < tol
