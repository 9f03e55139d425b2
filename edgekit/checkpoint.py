"""Checkpoints are plain state_dicts, loaded with `weights_only=True`. A pruned model's checkpoint
loads into the unpruned architecture: modules are resized to the shapes the checkpoint holds."""

from __future__ import annotations

import logging
import pickle
import warnings
from pathlib import Path

import torch
from torch import nn

from edgekit.errors import EdgekitError
from edgekit.fileio import atomic_path
from edgekit.state_layout import LayoutMismatch, map_by_order, needs_mapping, strip_wrapper_prefix

log = logging.getLogger(__name__)


def save_state_dict(model: nn.Module, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(model.state_dict(), tmp)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise EdgekitError(f"checkpoint {path} does not exist: check the --weights path")
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 5": the error below says it all
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch wraps every unpickling failure in UnpicklingError; "global" means a pickled object
        # (code to run) was refused, anything else means the bytes are not a checkpoint at all.
        text = str(exc).split("WeightsUnpickler error:")[-1]
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("Weights only load failed")]
        detail = next((ln for ln in lines if "global" in ln.lower()), lines[0] if lines else "")
        if "global" in detail.lower():
            raise EdgekitError(
                f"{path} needs code execution to load and was refused by weights_only ({detail[:120]}): save a plain "
                "state_dict with torch.save(model.state_dict(), path)"
            ) from None
        raise EdgekitError(
            f"{path} is not a readable PyTorch checkpoint "
            f"({_why_unreadable(path, detail[:120] or 'bad pickle data')}): give a file written by "
            "torch.save(model.state_dict(), path)"
        ) from None
    except Exception as exc:  # torch raises many types (KeyError, EOFError, RuntimeError...) for non-checkpoints
        first = str(exc).strip().splitlines()[0].split(". ")[0][:120] if str(exc).strip() else type(exc).__name__
        raise EdgekitError(
            f"{path} is not a readable PyTorch checkpoint ({_why_unreadable(path, first)}): give a file written by "
            "torch.save(model.state_dict(), path)"
        ) from None
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise EdgekitError(
            f"{path} holds no state_dict (a mapping of parameter names to tensors): save it with "
            "torch.save(model.state_dict(), path)"
        )
    return obj


def _why_unreadable(path: Path, torch_says: str) -> str:
    """torch's error for a file that is not a checkpoint (e.g. `KeyError: 101`) says little: name what the bytes are."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] == b"PK":
        return f"damaged or truncated archive: {torch_says}"
    if head[:1] == b"\x80":  # pickle protocol 2+
        return f"bad pickle data: {torch_says}"
    return f"neither a torch.save archive nor a pickle; it starts with {head!r}"


def _resize_to(model: nn.Module, state: dict[str, torch.Tensor], keep: set[str]) -> None:
    """Resize convs, norms and linears whose checkpoint shapes differ (a pruned model's checkpoint).
    Modules named in `keep` (the classifier) keep their output size, so a class-count mismatch is an error."""
    for name, module in model.named_modules():
        w = state.get(f"{name}.weight")
        if w is None or (name in keep and w.shape[0] != module.weight.shape[0]):
            continue
        if isinstance(module, nn.Conv2d) and w.ndim == 4 and tuple(w.shape) != tuple(module.weight.shape):
            depthwise = module.groups == module.in_channels and module.groups > 1
            out_ch = w.shape[0]
            groups = out_ch if depthwise else module.groups
            module.out_channels, module.in_channels, module.groups = out_ch, w.shape[1] * groups, groups
            module.weight = nn.Parameter(torch.empty_like(w))
            if module.bias is not None:
                module.bias = nn.Parameter(torch.empty(out_ch))
        elif isinstance(module, nn.BatchNorm2d) and tuple(w.shape) != tuple(module.weight.shape):
            n = w.shape[0]
            module.num_features = n
            module.weight, module.bias = nn.Parameter(torch.empty(n)), nn.Parameter(torch.empty(n))
            module.running_mean, module.running_var = torch.zeros(n), torch.ones(n)
        elif isinstance(module, nn.Linear) and w.ndim == 2 and tuple(w.shape) != tuple(module.weight.shape):
            module.out_features, module.in_features = w.shape
            module.weight = nn.Parameter(torch.empty_like(w))
            if module.bias is not None:
                module.bias = nn.Parameter(torch.empty(w.shape[0]))


def load_weights(
    model: nn.Module, path: str | Path, model_name: str, input_size: tuple[int, ...] | None, transfer: bool = False
) -> dict | None:
    """Load a state_dict file into `model` (pruned shapes are resized to). With `transfer`, a checkpoint
    whose classifier has another class count (e.g. ImageNet's 1000) loads everything else and leaves the
    model's freshly initialised classifier: returned as {"classifier", "checkpoint_classes", "classes"}."""
    return load_state(model, read_state_dict(path), f"checkpoint {path}", model_name, input_size, transfer)


def load_state(
    model: nn.Module,
    state: dict[str, torch.Tensor],
    source: str,
    model_name: str,
    input_size: tuple[int, ...] | None,
    transfer: bool = False,
) -> dict | None:
    """load_weights for a state_dict in memory; `source` names it in errors. A layout the model knows how
    to translate (a `map_state_dict(state)` method, e.g. efficientnet_pytorch's key names) is mapped first.
    With `input_size`, the loaded model must still run on such inputs."""
    state = strip_wrapper_prefix(dict(state))
    mapper = getattr(model, "map_state_dict", None)
    if callable(mapper):
        state = mapper(state)
    state = _in_own_names(model, state, source, model_name)
    note = _drop_other_head(model, state) if transfer else None
    keep = {getattr(model, "classifier_path", "")}
    _resize_to(model, state, keep)
    try:
        if note:  # strict on everything but the classifier, which keeps its new initialisation
            init_new_head(model.get_submodule(note["classifier"]))
            own = model.state_dict()
            state = {**{k: v for k, v in own.items() if k.startswith(note["classifier"] + ".")}, **state}
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        missing = [k for k in model.state_dict() if k not in state]
        unexpected = [k for k in state if k not in model.state_dict()]
        detail = (
            f"{len(missing)} missing keys (e.g. {missing[0]})"
            if missing
            else f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})"
            if unexpected
            else str(exc).splitlines()[-1].strip()[:160]
        )
        raise EdgekitError(
            f"{source} does not match model {model_name} with this data's classes and channels ({detail}): "
            "give weights saved from the same architecture"
        ) from None
    if input_size is None:
        return note
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *input_size))
    except RuntimeError as exc:
        raise EdgekitError(
            f"{source} loads into {model_name} but the model no longer runs on {tuple(input_size)} inputs "
            f"({str(exc).splitlines()[0][:120]}): give weights saved from the same architecture and input channels"
        ) from None
    return note


def _in_own_names(
    model: nn.Module, state: dict[str, torch.Tensor], source: str, model_name: str
) -> dict[str, torch.Tensor]:
    """`state` in the model's key names: as it is when it uses them, else mapped by order (timm's or another
    library's layout of the same architecture, `state_layout.map_by_order`), and that is logged."""
    own = model.state_dict()
    if not needs_mapping(own, state):
        return state
    try:
        mapped, renamed = map_by_order(own, state, getattr(model, "classifier_path", ""))
    except LayoutMismatch as exc:
        unknown = next(k for k in state if k not in own)
        raise EdgekitError(
            f"{source} does not match model {model_name}: it has keys the model lacks (e.g. {unknown}) and, "
            f"read in order, {exc}: give weights saved from the same architecture"
        ) from None
    if renamed:
        log.info(
            "%s: %d tensors mapped by order from another key layout (e.g. %s -> %s)",
            source, len(renamed), renamed[0][0], renamed[0][1],
        )  # fmt: skip
    return mapped


def init_new_head(layer: nn.Module) -> None:
    """A classifier re-initialised for transfer learning starts small (weights N(0, 0.01), zero bias), so the
    first steps predict near-uniformly (loss about ln(classes)). A layer's default init on pretrained
    features gave EfficientNet-Lite0 logits large enough for a first-epoch loss of 6 on 10 classes, and
    steps spent undoing that are steps the backbone's features go unused. Not zero: a conv classifier
    followed by ReLU (SqueezeNet's) would never get a gradient."""
    weight, bias = getattr(layer, "weight", None), getattr(layer, "bias", None)
    with torch.no_grad():
        if isinstance(weight, torch.Tensor):
            weight.normal_(0.0, 0.01)
        if isinstance(bias, torch.Tensor):
            bias.zero_()


def _drop_other_head(model: nn.Module, state: dict[str, torch.Tensor]) -> dict | None:
    """Remove the classifier's entries from `state` when they are for another class count."""
    path = getattr(model, "classifier_path", "")
    weight = state.get(f"{path}.weight") if path else None
    if weight is None:
        return None
    classes = model.state_dict()[f"{path}.weight"].shape[0]
    if weight.shape[0] == classes:
        return None
    for key in [k for k in state if k.startswith(path + ".")]:
        del state[key]
    return {"classifier": path, "checkpoint_classes": int(weight.shape[0]), "classes": int(classes)}
