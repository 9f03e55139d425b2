"""A state_dict in timm's layout loads into the zoo's torchvision-layout model (edgekit.state_layout).

The timm file is built here from timm's own names and shapes for `mobilenetv3_small_100` (244 tensors,
2,542,856 parameters: conv_stem, bn1, blocks.S.B with conv_dw/conv_pw/conv_pwl, se.conv_reduce/conv_expand,
a biased 1x1 `conv_head` and a linear `classifier`), written from timm's module order, not from edgekit's,
so the test fails if the zoo's tensor sequence drifts from timm's."""

from __future__ import annotations

import logging

import pytest
import torch

import edgekit
from edgekit.errors import EdgekitError

# timm mobilenetv3_small_100: (out, in/groups, k) of every convolution, stage by stage; None = no SE
_STAGES: list[list[tuple[int, int, int, int | None]]] = [  # (expanded, out, kernel, se_reduced) per block
    [(16, 16, 3, 8)],  # blocks.0.0: depthwise-separable (no expansion)
    [(72, 24, 3, None), (88, 24, 3, None)],
    [(96, 40, 5, 24), (240, 40, 5, 64), (240, 40, 5, 64)],
    [(120, 48, 5, 32), (144, 48, 5, 40)],
    [(288, 96, 5, 72), (576, 96, 5, 144), (576, 96, 5, 144)],
]


def _bn(prefix: str, n: int, counts: bool) -> dict[str, torch.Size]:
    out = {f"{prefix}.{p}": torch.Size([n]) for p in ("weight", "bias", "running_mean", "running_var")}
    if counts:
        out[f"{prefix}.num_batches_tracked"] = torch.Size([])
    return out


def _se(prefix: str, ch: int, reduced: int | None) -> dict[str, torch.Size]:
    if reduced is None:
        return {}
    return {
        f"{prefix}.se.conv_reduce.weight": torch.Size([reduced, ch, 1, 1]),
        f"{prefix}.se.conv_reduce.bias": torch.Size([reduced]),
        f"{prefix}.se.conv_expand.weight": torch.Size([ch, reduced, 1, 1]),
        f"{prefix}.se.conv_expand.bias": torch.Size([ch]),
    }


def timm_mobilenetv3_small_shapes(classes: int = 1000, counts: bool = True) -> dict[str, torch.Size]:
    shapes = {"conv_stem.weight": torch.Size([16, 3, 3, 3]), **_bn("bn1", 16, counts)}
    in_ch = 16
    for s, stage in enumerate(_STAGES):
        for b, (mid, out, k, se) in enumerate(stage):
            p = f"blocks.{s}.{b}"
            if s == 0:  # DepthwiseSeparableConv: conv_dw, bn1, se, conv_pw, bn2
                shapes |= {f"{p}.conv_dw.weight": torch.Size([mid, 1, k, k]), **_bn(f"{p}.bn1", mid, counts)}
                shapes |= _se(p, mid, se)
                shapes |= {f"{p}.conv_pw.weight": torch.Size([out, mid, 1, 1]), **_bn(f"{p}.bn2", out, counts)}
            else:  # InvertedResidual: conv_pw, bn1, conv_dw, bn2, se, conv_pwl, bn3
                shapes |= {f"{p}.conv_pw.weight": torch.Size([mid, in_ch, 1, 1]), **_bn(f"{p}.bn1", mid, counts)}
                shapes |= {f"{p}.conv_dw.weight": torch.Size([mid, 1, k, k]), **_bn(f"{p}.bn2", mid, counts)}
                shapes |= _se(p, mid, se)
                shapes |= {f"{p}.conv_pwl.weight": torch.Size([out, mid, 1, 1]), **_bn(f"{p}.bn3", out, counts)}
            in_ch = out
    shapes |= {"blocks.5.0.conv.weight": torch.Size([576, 96, 1, 1]), **_bn("blocks.5.0.bn1", 576, counts)}
    shapes |= {"conv_head.weight": torch.Size([1024, 576, 1, 1]), "conv_head.bias": torch.Size([1024])}
    shapes |= {"classifier.weight": torch.Size([classes, 1024]), "classifier.bias": torch.Size([classes])}
    return shapes


def timm_state(classes: int = 1000, counts: bool = True) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    out = {}
    for key, shape in timm_mobilenetv3_small_shapes(classes, counts).items():
        if key.endswith("num_batches_tracked"):
            out[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            out[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            out[key] = torch.randn(shape, generator=gen)
    return out


def test_timm_layout_is_the_published_model() -> None:
    shapes = timm_mobilenetv3_small_shapes()
    assert len(shapes) == 244
    params = sum(s.numel() for k, s in shapes.items() if "running" not in k and "num_batches" not in k)
    assert params == 2_542_856  # timm's count for mobilenetv3_small_100


def test_timm_state_dict_loads_into_the_zoo_model_by_order(caplog: pytest.LogCaptureFixture) -> None:
    state = timm_state()
    with caplog.at_level(logging.INFO, logger="edgekit"):
        model = edgekit.create_model("mobilenet_v3_small", num_classes=1000, weights=state)
    own = model.state_dict()
    assert torch.equal(own["features.0.0.weight"], state["conv_stem.weight"])
    # the SE of timm's first 5x5 block is the zoo's features.4 SE (block.2 after expand and depthwise)
    assert torch.equal(own["features.4.block.2.fc1.weight"], state["blocks.2.0.se.conv_reduce.weight"])
    assert torch.equal(own["features.12.1.running_var"], state["blocks.5.0.bn1.running_var"])
    # timm's biased 1x1 conv_head is the zoo's first linear layer
    assert torch.equal(own["classifier.0.weight"], state["conv_head.weight"].flatten(1))
    assert torch.equal(own["classifier.3.weight"], state["classifier.weight"])
    assert "mapped by order" in caplog.text


def test_timm_imagenet_head_is_reinitialised_for_ten_classes(caplog: pytest.LogCaptureFixture) -> None:
    state = timm_state(counts=False)  # some published files leave the BN counters out
    with caplog.at_level(logging.INFO, logger="edgekit"):
        model = edgekit.create_model("mobilenet_v3_small", num_classes=10, weights=state)
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 10)
    assert torch.equal(model.state_dict()["classifier.0.bias"], state["conv_head.bias"])
    assert "re-initialised for 10 classes (the weights were for 1000)" in caplog.text


def test_data_parallel_prefix_is_dropped() -> None:
    state = {f"module.{k}": v for k, v in timm_state().items()}
    model = edgekit.create_model("mobilenet_v3_small", num_classes=1000, weights=state)
    assert torch.equal(model.state_dict()["features.0.0.weight"], state["module.conv_stem.weight"])


def test_another_architecture_is_refused_naming_the_first_tensor_that_disagrees() -> None:
    state = timm_state()
    state["blocks.2.0.conv_dw.weight"] = torch.zeros(96, 1, 3, 3)  # a 3x3 where the model has a 5x5
    with pytest.raises(EdgekitError, match=r"tensor \d+ of the file, blocks\.2\.0\.conv_dw\.weight \(96, 1, 3, 3\)"):
        edgekit.create_model("mobilenet_v3_small", num_classes=1000, weights=state)
    del state["blocks.2.0.conv_dw.weight"]
    with pytest.raises(EdgekitError, match="243 tensors where the model has 244"):
        edgekit.create_model("mobilenet_v3_small", num_classes=1000, weights=state)
