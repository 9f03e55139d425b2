from pathlib import Path

import pytest

from edgekit.errors import EdgekitError
from edgekit.recipe import Recipe, dump, from_dict, load_recipe

RECIPES = sorted((Path(__file__).parent.parent / "recipes").glob("*.yaml"))


def test_shipped_recipes_load():
    assert {p.name for p in RECIPES} >= {"mobilenet_v3_fashion_mnist.yaml", "resnet18_fashion_mnist.yaml"}
    for path in RECIPES:
        assert isinstance(load_recipe(path), Recipe)


def test_dump_round_trips(tmp_path):
    rec = from_dict({"model": {"name": "resnet18"}, "prune": {"ratio": 0.25}}, "test", {"quantize.enabled": True})
    path = tmp_path / "r.yaml"
    path.write_text(dump(rec))
    assert load_recipe(path) == rec


def test_overrides_beat_recipe_values(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("prune:\n  ratio: 0.5\n")
    assert load_recipe(path, {"prune.ratio": 0.2}).prune.ratio == 0.2


@pytest.mark.parametrize(
    "tree,message",
    [
        ({"prune": {"ratioo": 0.3}}, "unknown key 'ratioo'; allowed keys: ratio"),
        ({"pruning": {}}, "unknown key 'pruning'"),
        ({"prune": {"ratio": "high"}}, "prune.ratio = 'high' is not allowed: expected float"),
        ({"prune": {"ratio": 1.0}}, r"prune.ratio = 1.0 is out of range: allowed \[0.0, 1.0\)"),
        ({"train": {"epochs": 2.5}}, "train.epochs = 2.5 is not allowed: expected int"),
        ({"train": {"optimizer": "adam"}}, "expected one of 'sgd', 'adamw'"),
        ({"quantize": {"calibration": "kl"}}, "expected one of 'minmax', 'entropy', 'percentile'"),
        ({"distill": {"enabled": "yes"}}, "expected bool"),
        ({"model": "resnet18"}, "model must be a mapping"),
    ],
)
def test_invalid_values_are_named(tree, message):
    with pytest.raises(EdgekitError, match=message):
        from_dict(tree, "r.yaml")


def test_yaml_syntax_error_has_line_number(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  name: resnet18\nprune: [0.3\n")
    with pytest.raises(EdgekitError, match=r"bad.yaml: invalid YAML at line \d+"):
        load_recipe(path)


def test_yaml_is_loaded_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("model: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(EdgekitError):
        load_recipe(path)


def test_unquoted_off_and_on_are_the_words_not_yaml_booleans(tmp_path):
    """PyYAML reads `mode: off` as False; a setting whose choices are words gets the word back."""
    path = tmp_path / "r.yaml"
    path.write_text("qat:\n  mode: off\nvalidate:\n  gpu: off\n")
    rec = load_recipe(path)
    assert rec.qat.mode == "off" and rec.validate.gpu == "off"
    path.write_text("qat:\n  mode: on\n")
    assert load_recipe(path).qat.mode == "on"
    path.write_text("quantize:\n  enabled: off\n")  # a real boolean setting stays a boolean
    assert load_recipe(path).quantize.enabled is False
