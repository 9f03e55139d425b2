"""What passes between stages: the models and files made so far, plus the history of what made them."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn


@dataclass
class StageRecord:
    name: str
    seconds: float
    config: dict[str, Any]
    metrics: dict[str, Any]


@dataclass
class ModelEntry:
    """One deliverable the report gets a row for: a torch model in memory or an ONNX file on disk."""

    name: str  # "baseline", "pruned", "distilled", "baseline.onnx", "model.onnx", "model.int8.onnx"
    format: str  # "torch" | "onnx"
    precision: str  # "fp32" | "int8"
    params: int
    macs: int
    path: Path  # checkpoint or ONNX file
    module: nn.Module | None = None


@dataclass
class Artifact:
    run_dir: Path
    entries: dict[str, ModelEntry] = field(default_factory=dict)
    history: list[StageRecord] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)  # data description, class names, normalization

    def add(self, entry: ModelEntry) -> ModelEntry:
        self.entries[entry.name] = entry
        return entry

    def latest(self, fmt: str = "torch") -> ModelEntry:
        """The most recently added entry of a format (the current model of the pipeline)."""
        for entry in reversed(list(self.entries.values())):
            if entry.format == fmt:
                return entry
        raise LookupError(f"no {fmt} model in this run yet")
