"""The stage contract. A stage is a name, the recipe section holding its strict `Config` dataclass, a
`run(artifact, cfg, ctx) -> metrics` that adds the models it makes to the Artifact (by role), an
optional `skip(...) -> reason | None`, and what it consumes and produces. The pipeline, the gates and
the report read only this: nothing dispatches on a stage's name.

Adding a stage: one file in edgekit/stages/ ending with `STAGE = register(Stage(...))`, its name in
`ORDER` (edgekit/stages/__init__.py), and its Config as a field of `Recipe` (edgekit/recipe.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgekit.artifact import Artifact, Role
from edgekit.registry import Registry
from edgekit.stages.context import Context

RunFn = Callable[[Artifact, Any, Context], dict[str, Any]]
SkipFn = Callable[[Artifact, Any, Context], "str | None"]


def never_skip(art: Artifact, cfg: Any, ctx: Context) -> str | None:
    return None


@dataclass(frozen=True)
class Stage:
    name: str
    section: str  # the recipe section (`recipe.<section>`) holding an instance of `config`
    config: type  # a strict dataclass (edgekit.config.build validates it)
    run: RunFn
    skip: SkipFn = never_skip
    consumes: tuple[Role, ...] = ()  # roles it reads (any that exist)
    produces: tuple[Role, ...] = ()  # roles it may add; the gates judge them by their ROLES entry


STAGES: Registry[Stage] = Registry("stage")


def register(stage: Stage) -> Stage:
    return STAGES.add(stage.name, stage)
