"""Options shared by several commands, declared once: typer reads a command's options from its
signature, so `with_options` adds the shared ones to it and the command receives them in **kwargs."""

import functools
import inspect
from collections.abc import Callable
from typing import Any

# (parameter name, default, annotation: Annotated[type, typer.Option(...)])
Shared = list[tuple[str, Any, Any]]


def with_options(shared: Shared) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def decorate(fn: Callable[..., None]) -> Callable[..., None]:
        own = [p for p in inspect.signature(fn).parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        extra = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=ann)
            for name, default, ann in shared
        ]

        @functools.wraps(fn)
        def command(**kwargs: Any) -> None:
            fn(**kwargs)

        command.__signature__ = inspect.Signature([*own, *extra])  # type: ignore[attr-defined]
        command.__annotations__ = {**{p.name: p.annotation for p in own}, **{n: a for n, _, a in shared}}
        return command

    return decorate
