"""Every registered stage meets the contract the pipeline relies on, and the pipeline enforces it."""

import dataclasses
import typing
from pathlib import Path

import pytest

from edgekit import pipeline
from edgekit.artifact import ROLES, Artifact, Role
from edgekit.recipe import Recipe
from edgekit.stages import ORDER, STAGES, Stage


def test_order_is_every_registered_stage_once():
    assert sorted(s.name for s in ORDER) == STAGES.names()


@pytest.mark.parametrize("stage", ORDER, ids=lambda s: s.name)
def test_stage_declares_its_section_config_and_roles(stage: Stage):
    fields = {f.name: f for f in dataclasses.fields(Recipe)}
    assert stage.section in fields, f"Recipe has no section {stage.section!r} for stage {stage.name}"
    assert typing.get_type_hints(Recipe)[stage.section] is stage.config
    assert dataclasses.is_dataclass(stage.config) and callable(stage.run) and callable(stage.skip)
    assert all(r in ROLES for r in (*stage.consumes, *stage.produces))


def test_a_stage_that_adds_an_undeclared_role_is_a_bug():
    art = Artifact(Path("/nonexistent"))
    stage = Stage(name="sneaky", section="export", config=object, run=lambda *a: {}, produces=(Role.ONNX,))
    art.add(Role.ONNX, Path("/nonexistent/model.onnx"), 1, 1)
    pipeline._check_contract(stage, art, set())  # declared: fine
    art.add(Role.INT8_ONNX, Path("/nonexistent/model.int8.onnx"), 1, 1)
    with pytest.raises(RuntimeError, match="made int8_onnx but declares only"):
        pipeline._check_contract(stage, art, {Role.ONNX})
