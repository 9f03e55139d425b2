from pathlib import Path

import pytest

from edgekit.config import ConfigError
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
        ({"prune": {"ratioo": 0.3}}, r"prune: unknown key 'ratioo': did you mean 'ratio'\? allowed keys: ratio"),
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


def _problems(tree: dict, overrides: dict | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        from_dict(tree, "r.yaml", overrides)
    return caught.value


def test_every_problem_is_reported_at_once():
    """Unknown keys, wrong types, bad choices, ranges and moved keys of several sections, in one error."""
    err = _problems(
        {
            "prune": {"ratoi": 0.3, "ratio": 1.5},
            "train": {"epochs": "three", "optimizer": "adam"},
            "quantize": {"target": "tensorrt"},
            "model": "resnet18",
        }
    )
    assert err.problems == [
        "prune: unknown key 'ratoi': did you mean 'ratio'? allowed keys: " + ", ".join(_keys("prune")),
        "prune.ratio = 1.5 is out of range: allowed [0.0, 1.0)",
        "train.epochs = 'three' is not allowed: expected int",
        "train.optimizer = 'adam' is not allowed: expected one of 'sgd', 'adamw'",
        "quantize.target has moved to target.platform: rename the key",
        "model must be a mapping of keys to values, got str: write it as `key: value` lines",
    ]
    message = str(err)
    assert message.startswith("r.yaml: 6 problems: (1) prune: unknown key 'ratoi'") and "\n" not in message
    assert "; (2) prune.ratio = 1.5 is out of range: allowed [0.0, 1.0); (3) train.epochs" in message


def _keys(section: str) -> list[str]:
    import dataclasses

    return [f.name for f in dataclasses.fields(getattr(Recipe(), section))]


def test_one_problem_reads_as_one_line_without_a_count():
    err = _problems({"prune": {"ratio": 1.5}})
    assert str(err) == "r.yaml: prune.ratio = 1.5 is out of range: allowed [0.0, 1.0)"


def test_checks_across_keys_run_beside_other_sections_problems():
    """A section whose keys are all valid still runs its own cross-key check (prune: one driver) while
    another section has a problem; a section with a bad key does not (its values are not all known)."""
    err = _problems({"prune": {"ratio": 0.3, "target_macs": 0.5}, "train": {"lr": -1}})
    assert len(err.problems) == 2 and "prune.ratio and prune.target_macs are both set" in err.problems[0]
    assert err.problems[1] == "train.lr = -1.0 is out of range: allowed [0.0, 10.0]"
    err = _problems({"prune": {"ratio": 0.3, "target_macs": 0.5, "steps": 0}})
    assert err.problems == ["prune.steps = 0 is out of range: allowed [1, 100]"]


@pytest.mark.parametrize(
    "tree,overrides,expected",
    [
        ({"distil": {"epochs": 1}}, None, "unknown key 'distil': did you mean 'distill'? allowed keys: model, data,"),
        ({}, {"distil.epochs": 1}, "unknown key 'distil': did you mean 'distill'?"),  # --set goes the same way
        ({}, {"train.optimiser": "sgd"}, "train: unknown key 'optimiser': did you mean 'optimizer'?"),
        ({"gate": {"maxdrop": 1}}, None, "gate: unknown key 'maxdrop': did you mean 'max_drop'?"),
    ],
)
def test_unknown_keys_get_the_close_match(tree, overrides, expected):
    assert _problems(tree, overrides).problems[0].startswith(expected)


def test_no_suggestion_when_nothing_is_close():
    (problem,) = _problems({"model": {"colour": "red"}}).problems
    assert problem == "model: unknown key 'colour': allowed keys: name, weights, small_input, options"


def test_a_file_reports_all_its_problems_with_its_path(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("prune:\n  ratio: 2\n  importance: fisher\ndistil:\n  epochs: 1\n")
    with pytest.raises(ConfigError, match=rf"^{path}: 3 problems: \(1\) prune.ratio = 2.0 is out of range") as err:
        load_recipe(path)
    assert "(2) prune.importance = 'fisher' is not allowed: expected one of 'l2'" in str(err.value)
    assert "(3) unknown key 'distil': did you mean 'distill'?" in str(err.value)
