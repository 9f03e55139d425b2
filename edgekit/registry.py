"""One small registry used for models, stages and backends: register by name, look up with suggestions."""
from __future__ import annotations

import difflib
import fnmatch
from typing import Callable, Generic, Iterator, TypeVar

from edgekit.errors import EdgekitError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator: `@REG.register()` uses the object's `__name__`."""

        def wrap(obj: T) -> T:
            key = name or obj.__name__  # type: ignore[attr-defined]
            if key in self._items or key in self._aliases:
                raise ValueError(f"{self.kind} {key!r} registered twice")
            self._items[key] = obj
            return obj

        return wrap

    def alias(self, alias: str, target: str) -> None:
        if target not in self._items:
            raise ValueError(f"alias {alias!r} points to unknown {self.kind} {target!r}")
        self._aliases[alias] = target

    def resolve(self, name: str) -> str:
        """Canonical name for `name` (an alias resolves to its target)."""
        if name in self._items:
            return name
        if name in self._aliases:
            return self._aliases[name]
        close = difflib.get_close_matches(name, list(self._items) + list(self._aliases), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else f"see `edgekit models` for the {len(self._items)} known names"
        raise EdgekitError(f"unknown {self.kind} {name!r}: {hint}")

    def get(self, name: str) -> T:
        return self._items[self.resolve(name)]

    def names(self, pattern: str | None = None) -> list[str]:
        names = sorted(self._items)
        return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names

    def aliases(self) -> dict[str, str]:
        return dict(self._aliases)

    def __contains__(self, name: str) -> bool:
        return name in self._items or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
