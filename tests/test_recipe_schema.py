"""The recipe schema as data (edgekit.recipe_schema): the committed JSON schema and docs/recipes.md's
reference are what the dataclasses generate, the schema accepts every shipped recipe and rejects what
edgekit rejects, and the key descriptions come from the Config docstrings."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml

from edgekit import recipe_schema
from edgekit.config import as_dict, ranged
from edgekit.errors import EdgekitError
from edgekit.recipe import Recipe, from_dict, load_recipe
from edgekit.recipe_schema import (
    BEGIN,
    END,
    REGENERATE,
    SCHEMA_FILE,
    defaults_yaml,
    generated_block,
    json_schema,
    key_descriptions,
    reference_markdown,
    schema_text,
    with_reference,
)

ROOT = Path(__file__).parent.parent
RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))
MODELINE = "# yaml-language-server: $schema=../edgekit/recipe.schema.json"


def _validator():
    jsonschema = pytest.importorskip("jsonschema")
    return jsonschema.Draft7Validator(json_schema())


def test_committed_schema_is_generated():
    assert SCHEMA_FILE.read_text() == schema_text(), f"edgekit/recipe.schema.json is stale: run `{REGENERATE}`"


def test_docs_reference_is_generated():
    doc = (ROOT / "docs" / "recipes.md").read_text()
    assert BEGIN in doc and END in doc, f"docs/recipes.md lost its markers {BEGIN} / {END}"
    assert generated_block(doc) == reference_markdown(), f"docs/recipes.md's key reference is stale: run `{REGENERATE}`"


def test_every_shipped_recipe_points_editors_at_the_schema():
    for path in RECIPES:
        assert path.read_text().splitlines()[0] == MODELINE, path
        assert (path.parent / MODELINE.split("=", 1)[1]).resolve() == SCHEMA_FILE.resolve()


def test_the_schema_is_draft_07_and_itself_valid():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json_schema()
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)


def test_every_section_and_key_is_in_the_schema_with_its_default():
    """The schema's defaults, read back as a recipe, are Recipe(): every section, every key, every value."""
    sections = json_schema()["properties"]
    from_schema = {name: {k: p["default"] for k, p in s["properties"].items()} for name, s in sections.items()}
    assert from_schema == as_dict(Recipe())


def _objects(schema: dict[str, Any]):
    if "properties" in schema:
        yield schema
        for sub in schema["properties"].values():
            yield from _objects(sub)


def test_config_objects_are_closed():
    objects = list(_objects(json_schema()))
    assert len(objects) == 1 + len(dataclasses.fields(Recipe))
    assert all(o["additionalProperties"] is False for o in objects)


def test_types_ranges_and_choices_come_from_the_hints():
    props = {name: s["properties"] for name, s in json_schema()["properties"].items()}
    assert props["prune"]["ratio"] == {
        "description": props["prune"]["ratio"]["description"],
        "type": "number",
        "minimum": 0.0,
        "exclusiveMaximum": 1.0,
        "default": 0.0,
    }
    assert props["train"]["epochs"]["type"] == "integer" and props["train"]["epochs"]["maximum"] == 10_000
    assert props["prune"]["target_macs"]["type"] == ["number", "null"]
    assert props["train"]["optimizer"]["enum"] == ["sgd", "adamw"]
    assert props["qat"]["mode"]["enum"] == ["auto", "off", "on", False, True]  # YAML 1.1's `off` is false
    assert props["validate"]["gpu"]["enum"] == ["auto", "off", False]
    assert props["model"]["options"]["type"] == "object" and props["build"]["sources"]["type"] == "array"
    assert props["distill"]["enabled"]["type"] == "boolean" and props["model"]["name"]["type"] == "string"


def test_every_shipped_recipe_and_the_defaults_validate():
    validator = _validator()
    for path in RECIPES:
        errors = [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
        assert not errors, (path, errors)
    assert not list(validator.iter_errors(yaml.safe_load(defaults_yaml())))


# Each case is refused by edgekit and by the schema.
BAD = [
    {"prune": {"ratoi": 0.3}},
    {"distil": {"epochs": 1}},
    {"prune": {"ratio": 1.0}},  # [0, 1): the upper end is excluded
    {"prune": {"ratio": -0.1}},
    {"prune": {"ratio": "high"}},
    {"train": {"epochs": 2.5}},
    {"train": {"epochs": True}},
    {"train": {"optimizer": "adam"}},
    {"distill": {"enabled": "yes"}},
    {"model": "resnet18"},
    {"model": {"options": []}},
    {"build": {"sources": "onnx"}},
    {"quantize": {"target": "tensorrt"}},  # a moved key
    {"quantize": {"enabled": "off"}},  # a real boolean takes no word
]
# Each case is accepted by both.
GOOD = [
    {},
    {"prune": None},  # `prune:` with nothing under it
    {"prune": {"ratio": 0.0, "layer_ratios": {"features.0": 0.5}}},
    {"prune": {"target_macs": 1.0}},  # (0, 1]: the upper end is included
    {"train": {"lr": 1}},  # an int where a float is expected
    {"qat": {"mode": False}, "validate": {"gpu": False}},  # what PyYAML reads for `mode: off`
    {"model": {"weights": None, "options": {"width_mult": 0.5}}},
]


@pytest.mark.parametrize("tree", BAD, ids=[json.dumps(t) for t in BAD])
def test_a_bad_recipe_is_refused_by_edgekit_and_the_schema(tree):
    validator = _validator()
    with pytest.raises(EdgekitError):
        from_dict(tree, "r.yaml")
    assert not validator.is_valid(tree)


@pytest.mark.parametrize("tree", GOOD, ids=[json.dumps(t) for t in GOOD])
def test_a_good_recipe_is_accepted_by_edgekit_and_the_schema(tree):
    validator = _validator()
    assert isinstance(from_dict(tree, "r.yaml"), Recipe)
    assert validator.is_valid(tree), [e.message for e in validator.iter_errors(tree)]


def test_defaults_yaml_loads_back_to_the_default_recipe(tmp_path):
    text = defaults_yaml()
    assert text.startswith("#") and set(yaml.safe_load(text)) == {f.name for f in dataclasses.fields(Recipe)}
    (tmp_path / "defaults.yaml").write_text(text)
    assert load_recipe(tmp_path / "defaults.yaml") == Recipe()


@dataclasses.dataclass
class _Base:
    """`lr` is the peak learning rate. `seed`: the base's seed."""

    lr: float = ranged(0.1, 0.0, 1.0)
    seed: int = 0


@dataclasses.dataclass
class _Example(_Base):
    """Intro sentence, e.g. Like This. `mode`: auto (picks one; see `size`), on or off.
    `size`/`depth`: the shape (in [1, 8); rounded). `alpha` softens; `beta` sharpens the output.
    Only `depth` and `lr` are mentioned here."""

    mode: Literal["auto", "on", "off"] = "auto"
    size: int = 1
    depth: int = 1
    alpha: float = 0.5
    beta: float = 0.5
    unnamed: bool = False


def test_key_descriptions_follow_the_docstring():
    assert key_descriptions(_Example) == {
        "lr": "Only `depth` and `lr` are mentioned here.",  # a mention in the class itself beats its base
        "seed": "the base's seed.",
        "mode": "auto (picks one; see `size`), on or off.",  # the `;` in parentheses is not a clause
        "size": "`size`/`depth`: the shape (in [1, 8); rounded).",
        "depth": "`size`/`depth`: the shape (in [1, 8); rounded).",
        "alpha": "`alpha` softens.",
        "beta": "`beta` sharpens the output.",
    }
    section = recipe_schema.object_schema(_Example)
    assert section["description"].startswith("Intro sentence, e.g. Like This.")
    assert "description" not in section["properties"]["unnamed"]
    # the intro keeps the sentences no key leads: mentions stay, as they also say something of the section
    intro = "Intro sentence, e.g. Like This. Only `depth` and `lr` are mentioned here."
    assert recipe_schema.intro(section["description"]) == intro


def test_the_reference_lists_every_key_once_per_section():
    text = reference_markdown()
    for name, section in json_schema()["properties"].items():
        block = text.split(f"### `{name}`\n", 1)[1].split("\n### ", 1)[0]
        rows = [line.split(" | ")[0] for line in block.splitlines() if line.startswith("| `")]
        assert rows == [f"| `{key}`" for key in section["properties"]], name
    assert "| `ratio` | number | `0.0` | [0.0, 1.0) | " in text
    assert "| `mode` | one of `auto`, `off`, `on` | `auto` |  | " in text
    assert "BatchNorm \\|gamma\\|" in text  # a pipe inside a cell is escaped


def test_write_regenerates_only_between_the_markers(tmp_path):
    docs, schema = tmp_path / "recipes.md", tmp_path / "recipe.schema.json"
    docs.write_text(f"# Keys\n\nHand-written prose.\n\n{BEGIN}\nstale\n{END}\n\nMore prose.\n")
    recipe_schema.write(schema, docs)
    assert json.loads(schema.read_text()) == json_schema()
    text = docs.read_text()
    assert text.startswith("# Keys\n\nHand-written prose.\n\n") and text.endswith(f"{END}\n\nMore prose.\n")
    assert generated_block(text) == reference_markdown() and "stale" not in text
    with pytest.raises(EdgekitError, match="no <!-- BEGIN GENERATED"):
        with_reference("no markers here", "x")


def test_module_prints_schema_docs_and_defaults(capsys):
    assert recipe_schema.main([]) == 0 and json.loads(capsys.readouterr().out) == json_schema()
    assert recipe_schema.main(["--docs"]) == 0 and capsys.readouterr().out == reference_markdown()
    assert recipe_schema.main(["--defaults"]) == 0 and capsys.readouterr().out == defaults_yaml()
