"""One small registry for models (edgekit.zoo), stages (edgekit.stages) and runner backends
(edgekit.backends.select): register by name, look up with close-match suggestions."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from edgekit.errors import EdgekitError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, listing: str | None = None):
        """`kind` names the things in errors; `listing` tells where the user sees them all."""
        self.kind = kind
        self.listing = listing
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator: `@REG.register()` uses the object's `__name__`."""

        def wrap(obj: T) -> T:
            return self.add(name or obj.__name__, obj)  # type: ignore[attr-defined]

        return wrap

    def add(self, name: str, obj: T) -> T:
        if name in self._items or name in self._aliases:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self._items[name] = obj
        return obj

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
        if close:
            hint = f"did you mean {', '.join(close)}?"
        elif self.listing:
            hint = f"see {self.listing} for the {len(self._items)} known names"
        else:
            hint = f"use one of {', '.join(self.names())}"
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
