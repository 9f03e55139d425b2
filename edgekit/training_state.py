"""A fit's resume checkpoint: the whole training state (weights, optimizer, loss scaler, both random
generators, step) saved after every epoch, and read back only when it was saved with the same training
settings (its fingerprint)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from edgekit.fileio import atomic_path

log = logging.getLogger("edgekit.training")


def save_state(
    path: Path, epoch: int, step: int, model, extra, opt, scaler, gen, fingerprint: dict, last_loss: float
) -> None:
    """Everything a fit needs to continue after `epoch` as if it had not stopped, written atomically."""
    state = {
        "fingerprint": fingerprint,
        "epoch": epoch,
        "step": step,
        "last_loss": last_loss,
        "model": model.state_dict(),
        "extra": extra.state_dict() if extra is not None else {},
        "optimizer": opt.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else {},
        "generator": gen.get_state(),
        "torch_rng": torch.get_rng_state(),
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path: Path, device, fingerprint: dict, label: str):
    """The saved training state, or None when there is none or it belongs to other training settings."""
    if path is None or not path.is_file():
        return None
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # a damaged file: train from the start rather than fail the resume
        log.info(
            f"{label}: ignoring the unreadable epoch checkpoint {path.name} ({type(exc).__name__}); training from "
            "epoch 1"
        )
        return None
    if state.get("fingerprint") != fingerprint:
        log.info(f"{label}: ignoring {path.name}: it was saved with other training settings; training from epoch 1")
        return None
    return state


def to_cpu(value):
    """`value` (a training state: nested dicts, lists, tensors) with its tensors on the CPU, to be
    pickled to the other ranks."""
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return {k: to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_cpu(v) for v in value)
    return value
