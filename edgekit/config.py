"""Strict config dataclasses: unknown keys, wrong types and out-of-range values are rejected with the
key, the bad value and what is allowed. A stage's config is a dataclass beside its code; range rules are
declared with `field(metadata={"range": (lo, hi, hi_inclusive)})` or a `Literal[...]` type."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, get_args, get_origin

from edgekit.errors import EdgekitError


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


def _yaml_switch(value: Any, tp: Any) -> Any:
    """YAML 1.1 (PyYAML's safe loader) reads an unquoted `off` / `on` as false / true: give a setting whose
    choices include "off" / "on" (e.g. `qat.mode: off`) the word its author wrote."""
    if isinstance(value, bool) and typing.get_origin(tp) is Literal:
        word = "on" if value else "off"
        if word in typing.get_args(tp):
            return word
    return value


def build(cls, values: dict[str, Any] | None, where: str):
    """Build dataclass `cls` from a mapping, validating keys, types and ranges. `where` names the section."""
    values = {} if values is None else values
    if not isinstance(values, dict):
        raise EdgekitError(
            f"{where} must be a mapping of keys to values, got {type(values).__name__}: write it as `key: value` lines"
        )
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in values if k not in fields]
    if unknown:
        raise EdgekitError(f"{where}: unknown key {unknown[0]!r}; allowed keys: {', '.join(fields)}")
    kwargs = {}
    for name, value in values.items():
        tp, key = hints[name], f"{where}.{name}"
        if dataclasses.is_dataclass(tp):
            kwargs[name] = build(tp, value, key)
            continue
        if tp is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        value = _yaml_switch(value, tp)
        if not _matches(value, tp):
            raise EdgekitError(f"{key} = {value!r} is not allowed: expected {_type_name(tp)}")
        rng = fields[name].metadata.get("range")
        if rng is not None and value is not None:
            lo, hi, hi_incl = rng
            if not (lo <= value and (value <= hi if hi_incl else value < hi)):
                raise EdgekitError(f"{key} = {value!r} is out of range: allowed [{lo}, {hi}{']' if hi_incl else ')'}")
        kwargs[name] = value
    return cls(**kwargs)


def as_dict(obj) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def ranged(default, lo, hi, hi_inclusive: bool = True):
    """A dataclass field with a default and an allowed range [lo, hi] (or [lo, hi))."""
    return dataclasses.field(default=default, metadata={"range": (lo, hi, hi_inclusive)})
