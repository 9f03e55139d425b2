"""What passes between stages: the models and files made so far (addressed by role), a typed record of
the run, and the history of what made them. `ROLES` is the one table of deliverables: a stage names the
role it produces, and the format, file name and how the gates judge it come from here."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from torch import nn

from edgekit.errors import EdgekitError


class Role(str, Enum):
    """What a model is in the run, independent of its file name. A `str` enum: `Role.ONNX == "onnx"`."""

    BASELINE = "baseline"
    PRUNED = "pruned"
    DISTILLED = "distilled"
    BASELINE_ONNX = "baseline_onnx"
    ONNX = "onnx"
    INT8_ONNX = "int8_onnx"
    FP16_ONNX = "fp16_onnx"
    ENGINE = "engine"
    INT8_ENGINE = "int8_engine"
    FP16_ENGINE = "fp16_engine"
    REWRITTEN_ONNX = "rewritten_onnx"
    REWRITTEN_INT8_ONNX = "rewritten_int8_onnx"

    @property
    def spec(self) -> RoleInfo:
        """Its row of ROLES: format, file name, how the gates judge it."""
        return ROLES[self]


# How the accuracy gates treat a role: the reference everything is compared with, an intermediate
# (judged only by its stage's own limit), a deliverable (also judged against the baseline), a candidate
# (judged like a deliverable, but missing the gate only keeps it from shipping: an extra option such as
# the deployment rewrite must not fail a run), or not measured by the gates (engines run only where
# TensorRT and a GPU are).
Judged = Literal["reference", "intermediate", "deliverable", "candidate", "unmeasured"]


@dataclass(frozen=True)
class RoleInfo:
    format: Literal["torch", "onnx", "engine"]
    file: str  # the file's name in the run folder
    judged: Judged
    precision: str = "fp32"  # what the role holds unless its stage says otherwise (an engine's comes from its file)
    peer: Role | None = None  # the fp32 model this one is a lower-precision copy of (int8/fp16)


ROLES: dict[Role, RoleInfo] = {
    Role.BASELINE: RoleInfo("torch", "baseline.pt", "reference"),
    Role.PRUNED: RoleInfo("torch", "pruned.pt", "intermediate"),
    Role.DISTILLED: RoleInfo("torch", "distilled.pt", "deliverable"),
    Role.BASELINE_ONNX: RoleInfo("onnx", "baseline.onnx", "reference"),
    Role.ONNX: RoleInfo("onnx", "model.onnx", "deliverable"),
    Role.INT8_ONNX: RoleInfo("onnx", "model.int8.onnx", "deliverable", "int8", peer=Role.ONNX),
    Role.FP16_ONNX: RoleInfo("onnx", "model.fp16.onnx", "deliverable", "fp16", peer=Role.ONNX),
    Role.ENGINE: RoleInfo("engine", "model.engine", "unmeasured"),
    Role.INT8_ENGINE: RoleInfo("engine", "model.int8.engine", "unmeasured", "int8", peer=Role.ENGINE),
    Role.FP16_ENGINE: RoleInfo("engine", "model.fp16.engine", "unmeasured", "fp16", peer=Role.ENGINE),
    Role.REWRITTEN_ONNX: RoleInfo("onnx", "rewritten.onnx", "candidate"),
    Role.REWRITTEN_INT8_ONNX: RoleInfo("onnx", "rewritten.int8.onnx", "candidate", "int8", peer=Role.REWRITTEN_ONNX),
}

# The engine built from each ONNX role (the build stage's mapping).
ENGINE_OF: dict[Role, Role] = {
    Role.ONNX: Role.ENGINE,
    Role.INT8_ONNX: Role.INT8_ENGINE,
    Role.FP16_ONNX: Role.FP16_ENGINE,
}


@dataclass
class StageRecord:
    name: str
    seconds: float
    config: dict[str, Any]
    metrics: dict[str, Any]


@dataclass
class ModelEntry:
    """One model the run made: a torch model in memory (with its checkpoint) or a file on disk.
    `name` is what the report shows (the file name for files; "finetuned" for a model recovered without
    a teacher); `source` is the role it was made from, which the stage gates compare it with."""

    role: Role
    name: str
    format: str  # "torch" | "onnx" | "engine"
    precision: str  # "fp32" | "fp16" | "int8"
    params: int
    macs: int
    path: Path  # checkpoint, ONNX file or engine
    module: nn.Module | None = None
    source: Role | None = None


@dataclass
class RunInfo:
    """The run's typed record (what the report and the gates read; saved in the manifest). Results are
    validate's rows; gate_top1/gate_results the accuracy gates' measurements; ship the chosen artifact."""

    model: str | None = None
    classes: list[str] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)
    scale: str = "1/255"  # pixels x scale, then (x - mean) / std, is the model's input
    transfer: dict[str, Any] | None = None  # the classifier re-initialised for the data's classes
    input_size: list[int] = field(default_factory=list)
    data: dict[str, Any] | None = None
    target: str = "cpu"
    max_drop: float | None = None
    gate_config: dict[str, Any] | None = None
    gate_top1: dict[str, float] = field(default_factory=dict)
    gate_results: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)
    threads: int | None = None
    ship: dict[str, Any] | None = None
    resumed: list[dict[str, Any]] = field(default_factory=list)
    world_size: int = 1  # processes that trained (torch.distributed); a resume must use as many
    backend: str | None = None  # their collectives' backend: gloo (CPU) or nccl (CUDA); None in one process

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunInfo:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise EdgekitError(
                f"the run record has unknown fields {', '.join(unknown)} (made by another edgekit version?): start a "
                "new run"
            )
        return cls(**values)


@dataclass
class Artifact:
    run_dir: Path
    entries: dict[Role, ModelEntry] = field(default_factory=dict)
    history: list[StageRecord] = field(default_factory=list)
    info: RunInfo = field(default_factory=RunInfo)

    def add(
        self,
        role: Role,
        path: Path,
        params: int,
        macs: int,
        *,
        module: nn.Module | None = None,
        source: Role | None = None,
        precision: str | None = None,
        name: str | None = None,
    ) -> ModelEntry:
        """Record a model of `role`; format and display name come from ROLES, precision defaults to
        the role's (fp32 unless the role says int8/fp16)."""
        spec = ROLES[role]
        shown = name or (role.value if spec.format == "torch" else Path(path).name)
        entry = ModelEntry(
            role, shown, spec.format, precision or spec.precision, params, macs, Path(path), module, source
        )
        self.entries[role] = entry
        return entry

    def __getitem__(self, role: Role) -> ModelEntry:
        if role not in self.entries:
            raise EdgekitError(
                f"this run has no {Role(role).value} model yet: a stage that needs it ran before the stage that makes "
                "it"
            )
        return self.entries[role]

    def __contains__(self, role: object) -> bool:
        return role in self.entries

    def latest(self, fmt: str = "torch") -> ModelEntry:
        """The most recently added entry of a format (the current model of the pipeline)."""
        for entry in reversed(list(self.entries.values())):
            if entry.format == fmt:
                return entry
        raise LookupError(f"no {fmt} model in this run yet")
