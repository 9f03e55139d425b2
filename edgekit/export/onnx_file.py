"""One self-contained ONNX file per model: TorchScript-based export at the opset asked for (dynamic
batch, input `input`, output `logits`), simplified with onnxsim, checked with onnx.checker, stamped with
metadata (Ultralytics' habit: `metadata_props`), saved atomically, and compared with PyTorch.

torch 2.13's default dynamo exporter writes a higher opset and external `.onnx.data` by default; users
copy one file to a device, so edgekit exports with `dynamo=False`."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgekit.artifact import RunInfo
from edgekit.backends.ort import OrtRunner
from edgekit.errors import EdgekitError, StageFailed
from edgekit.fileio import atomic_path
from edgekit.version import __version__

DEFAULT_OPSET = 17


class ParityError(StageFailed):
    """The exported file does not compute what the PyTorch model computes (a failed stage, exit 1)."""


def to_onnx(model: torch.nn.Module, input_size, opset: int = DEFAULT_OPSET, simplify: bool = True):
    """The ModelProto of `model` for (N, *input_size) float32 input."""
    import onnx

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(),
            (torch.zeros(2, *input_size),),
            buf,  # type: ignore[arg-type]  # torch's stub says path-only; the TorchScript exporter writes to file objects
            dynamo=False,
            opset_version=opset,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )
    proto = onnx.load_from_string(buf.getvalue())
    if simplify:
        import onnxsim

        proto, ok = onnxsim.simplify(proto)
        if not ok:
            raise EdgekitError("onnxsim could not validate the simplified model: rerun with export.simplify: false")
    onnx.checker.check_model(proto, full_check=True)
    return proto


def metadata(info: RunInfo, source: str) -> dict[str, str]:
    """What a deployed file must carry to be used correctly: classes, input size, normalization."""
    return {
        "edgekit_version": __version__,
        "model": str(info.model),
        "source_artifact": source,
        "class_names": json.dumps(info.classes),
        "input_size": json.dumps(info.input_size),
        "normalization": json.dumps({"mean": info.mean, "std": info.std, "scale": info.scale}),
    }


def stamp(proto, meta: dict[str, str]) -> None:
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def save_onnx(proto, path: Path) -> None:
    import onnx

    with atomic_path(path) as tmp:
        onnx.save_model(proto, str(tmp))


def parity(model: torch.nn.Module, path: Path, images: np.ndarray) -> dict[str, Any]:
    """Largest logit difference (where, and relative to the largest logit) and top-1 agreement between
    PyTorch and the file in ONNX Runtime."""
    with torch.no_grad():
        ref = model.eval()(torch.from_numpy(images)).numpy()
    got = OrtRunner(path, threads=1).run(images)
    # (image, value) pairs whatever the output's shape: a classifier gives (N, classes) already
    ref, got = ref.reshape(len(images), -1), got.reshape(len(images), -1)
    diff = np.abs(ref - got)
    image, logit = np.unravel_index(int(diff.argmax()), diff.shape)
    scale = float(np.abs(ref).max())
    return {
        "max_abs_diff": float(diff.max()),
        "max_abs_logit": scale,
        "relative_diff": float(diff.max()) / scale if scale else float(diff.max()),
        "worst": f"logit {int(logit)} of image {int(image)}",
        "top1_agreement": float((ref.argmax(1) == got.argmax(1)).mean()),
    }


def export_checked(
    model: torch.nn.Module,
    path: Path,
    input_size,
    images: np.ndarray,
    meta: dict[str, str],
    *,
    opset: int = DEFAULT_OPSET,
    simplify: bool = True,
    atol: float = 1e-3,
    rtol: float = 1e-4,
    min_agreement: float = 0.99,
    label: str = "the model",
) -> dict[str, Any]:
    """Export, stamp and save `model` to `path` only if it passes the parity check on `images`
    (ParityError otherwise; an unchecked file never appears at `path`). The logits may differ by
    `atol + rtol * max |logit|`: float sums reassociate differently in ONNX Runtime's kernels than in
    PyTorch's, and the difference grows with the logits' scale and the network's depth (EfficientNet-Lite0
    at 96 px, logits near 10, differed by 1.0e-3 on an AVX2 machine), so a fixed bound alone fails
    sound exports of deep models."""
    proto = to_onnx(model, input_size, opset, simplify)
    stamp(proto, meta)
    tmp_check = path.with_name(f".{path.name}.parity")
    try:
        save_onnx(proto, tmp_check)
        check = parity(model, tmp_check, images)
        allowed = atol + rtol * check["max_abs_logit"]
        check["allowed_diff"] = allowed
        if check["max_abs_diff"] > allowed or check["top1_agreement"] < min_agreement:
            raise ParityError(
                f"ONNX parity check failed for {label}: max |diff| {check['max_abs_diff']:.2e} at "
                f"{check.get('worst', '?')}, {check.get('relative_diff', 0):.1e} of max |logit| "
                f"{check['max_abs_logit']:.3g} (allowed {allowed:.2e} = {atol} + {rtol} x max |logit|), top-1 "
                f"agreement {check['top1_agreement']:.3f} (needed {min_agreement}): try another export.opset or "
                "export.simplify: false"
            )
        tmp_check.replace(path)
    finally:
        tmp_check.unlink(missing_ok=True)
    return check
