"""Make tests/data/torchvision_reference.json: for each torchvision classification model that edgekit
mirrors, the digest of its state_dict keys and shapes and its eval-mode logits (first 16 of 1000, two
images) under the deterministic weights of tests/tv_reference.py.

Needs torchvision (not a dependency of edgekit):
`PYTHONPATH=/path/to/torchvision python tests/tools/make_tv_reference.py`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tv_reference import deterministic_state, keys_digest, reference_input

NAMES = [
    "alexnet",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
    "vgg11_bn",
    "vgg13_bn",
    "vgg16_bn",
    "vgg19_bn",
    "googlenet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "wide_resnet50_2",
    "wide_resnet101_2",
    "densenet121",
    "densenet169",
    "densenet201",
    "densenet161",
    "squeezenet1_0",
    "squeezenet1_1",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "shufflenet_v2_x0_5",
    "shufflenet_v2_x1_0",
    "shufflenet_v2_x1_5",
    "shufflenet_v2_x2_0",
    "efficientnet_b0",
    "efficientnet_b1",
    "efficientnet_b2",
    "efficientnet_b3",
    "efficientnet_v2_s",
    "mnasnet0_5",
    "mnasnet0_75",
    "mnasnet1_0",
    "mnasnet1_3",
]


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore")
    import torchvision
    import torchvision.models as tvm

    torch.set_num_threads(2)
    out = {"torchvision": torchvision.__version__, "torch": torch.__version__, "models": {}}
    x = reference_input()
    for name in NAMES:
        kwargs = {"aux_logits": False, "init_weights": False} if name == "googlenet" else {}
        model = getattr(tvm, name)(**kwargs).eval()
        state = model.state_dict()
        model.load_state_dict(deterministic_state(state))
        with torch.no_grad():
            logits = model(x)
        out["models"][name] = {
            "keys": keys_digest(state),
            "num_keys": len(state),
            "params": sum(p.numel() for p in model.parameters()),
            "logits": [[round(v, 6) for v in row[:16].tolist()] for row in logits],
            "logits_abs_max": round(float(logits.abs().max()), 6),
        }
        print(name, out["models"][name]["params"], flush=True)
    path = Path(__file__).resolve().parents[1] / "data" / "torchvision_reference.json"
    path.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
