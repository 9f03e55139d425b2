"""Which runner runs a model: one registry keyed by the model's format, so callers never branch on it.
Every runner takes normalized float32 batches and returns logits (edgekit.backends.base.Runner)."""

from __future__ import annotations

from collections.abc import Callable

from edgekit.artifact import ModelEntry
from edgekit.backends.base import Runner
from edgekit.registry import Registry

RunnerFactory = Callable[[ModelEntry, int], Runner]
RUNNERS: Registry[RunnerFactory] = Registry("runner format")


@RUNNERS.register("torch")
def _torch(entry: ModelEntry, threads: int) -> Runner:
    from edgekit.backends.torch_cpu import TorchRunner

    assert entry.module is not None, f"{entry.name} is not in memory"
    return TorchRunner(entry.module, threads)


@RUNNERS.register("onnx")
def _onnx(entry: ModelEntry, threads: int) -> Runner:
    from edgekit.backends.ort import OrtRunner

    return OrtRunner(entry.path, threads)


@RUNNERS.register("engine")
def _engine(entry: ModelEntry, threads: int) -> Runner:
    from edgekit.backends.tensorrt.runner import TrtRunner

    return TrtRunner(entry.path, onnx_path=entry.path.with_suffix(".onnx"))


def runner_for(entry: ModelEntry, threads: int) -> Runner:
    """The CPU (or, for engines, TensorRT) runner of `entry` with `threads` intra-op threads."""
    return RUNNERS.get(entry.format)(entry, threads)
