"""Strict config dataclasses: unknown keys, wrong types and out-of-range values are rejected with the
key, the bad value and what is allowed. A stage's config is a dataclass beside its code; range rules are
declared with `field(metadata={"range": (lo, hi, hi_inclusive)})` or a `Literal[...]` type.

`build` reports every problem of a mapping at once (nested sections included) in one `ConfigError`, and
suggests the close match of a mistyped key; edgekit.recipe_schema turns the same dataclasses into a
JSON schema."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, get_args, get_origin

from edgekit.errors import EdgekitError


class ConfigError(EdgekitError):
    """Every problem found in one mapping, in one line (the CLI prints an error as one line): a single
    problem reads `where: problem`, several `where: N problems: (1) ...; (2) ...`."""

    def __init__(self, where: str, problems: list[str]):
        self.where, self.problems = where, problems
        super().__init__(problems_message(where, problems))


def problems_message(where: str, problems: list[str]) -> str:
    if len(problems) == 1:
        return f"{where}: {problems[0]}"
    listed = "; ".join(f"({i}) {p}" for i, p in enumerate(problems, 1))
    return f"{where}: {len(problems)} problems: {listed}"


def _type_name(tp) -> str:
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    return {type(None): "null", dict: "mapping", list: "list"}.get(tp, getattr(tp, "__name__", str(tp)))


def _matches(value: Any, tp) -> bool:
    origin = get_origin(tp)
    if origin is Literal:
        return value in get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in get_args(tp))
    if tp is Any:
        return True
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (dict, list):
        return isinstance(value, origin)
    return isinstance(value, tp)


def yaml_switch_words(tp: Any) -> dict[bool, str]:
    """The booleans a `Literal` setting takes for its words: YAML 1.1 (PyYAML's safe loader) reads an
    unquoted `off` / `on` as false / true, so a setting whose choices include "off" / "on" (e.g.
    `qat.mode: off`) gets the word its author wrote."""
    if get_origin(tp) is not Literal:
        return {}
    return {flag: word for flag, word in ((False, "off"), (True, "on")) if word in get_args(tp)}


def range_text(rng: tuple[Any, Any, bool]) -> str:
    lo, hi, hi_incl = rng
    return f"[{lo}, {hi}{']' if hi_incl else ')'}"


def _in_range(value: Any, rng: tuple[Any, Any, bool]) -> bool:
    lo, hi, hi_incl = rng
    return lo <= value and (value <= hi if hi_incl else value < hi)


def _unknown_key(name: Any, path: str, allowed: list[str], moved: Mapping[str, str]) -> str:
    key = f"{path}.{name}" if path else str(name)
    if key in moved:
        return f"{key} has moved to {moved[key]}: rename the key"
    where = f"{path}: " if path else ""
    close = difflib.get_close_matches(str(name), allowed, n=1)
    hint = f" did you mean {close[0]!r}?" if close else ""
    return f"{where}unknown key {name!r}:{hint} allowed keys: {', '.join(allowed)}"


def _value(field: dataclasses.Field, tp: Any, value: Any, key: str) -> tuple[Any, str | None]:
    """(the value as the dataclass holds it, the problem with it or None)."""
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool):
        value = yaml_switch_words(tp).get(value, value)
    if not _matches(value, tp):
        return value, f"{key} = {value!r} is not allowed: expected {_type_name(tp)}"
    rng = field.metadata.get("range")
    if rng is not None and value is not None and not _in_range(value, rng):
        return value, f"{key} = {value!r} is out of range: allowed {range_text(rng)}"
    return value, None


def _collect(cls, values: Any, path: str, problems: list[str], moved: Mapping[str, str]) -> Any:
    """`cls` built from `values`, or None when a problem was found; every problem is appended to `problems`
    (keys named by their dotted `path`) so that one error can list them all."""
    values = {} if values is None else values
    if not isinstance(values, dict):
        problems.append(
            f"{path} must be a mapping of keys to values, got {type(values).__name__}: write it as `key: value` lines"
        )
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    found, kwargs = len(problems), {}
    for name, value in values.items():
        key = f"{path}.{name}" if path else str(name)
        if name not in fields:
            problems.append(_unknown_key(name, path, [*fields], moved))
        elif dataclasses.is_dataclass(hints[name]):
            kwargs[name] = _collect(hints[name], value, key, problems, moved)
        else:
            kwargs[name], problem = _value(fields[name], hints[name], value, key)
            problems.extend([problem] if problem else [])
    if len(problems) > found:
        return None
    try:  # checks across keys (__post_init__) run once every key is valid
        return cls(**kwargs)
    except EdgekitError as exc:
        problems.append(str(exc))
        return None


def build(cls, values: dict[str, Any] | None, where: str, moved: Mapping[str, str] | None = None):
    """Build dataclass `cls` from a mapping, validating keys, types and ranges of it and of its nested
    sections. `where` names the source (a file, "command line", a section) in the error; `moved`: dotted
    keys that have moved, with their new home. Raises one ConfigError listing every problem."""
    if values is not None and not isinstance(values, dict):
        raise EdgekitError(
            f"{where} must be a mapping of keys to values, got {type(values).__name__}: write it as `key: value` lines"
        )
    problems: list[str] = []
    built = _collect(cls, values, "", problems, moved or {})
    if problems:
        raise ConfigError(where, problems)
    return built


def as_dict(obj) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def ranged(default, lo, hi, hi_inclusive: bool = True):
    """A dataclass field with a default and an allowed range [lo, hi] (or [lo, hi))."""
    return dataclasses.field(default=default, metadata={"range": (lo, hi, hi_inclusive)})
