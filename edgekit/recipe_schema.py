"""The recipe schema as data, generated from the config dataclasses (the one source of keys, types, ranges,
defaults and their prose): a JSON schema for editors (draft-07, what redhat's yaml-language-server reads;
shipped as edgekit/recipe.schema.json), the full default recipe as YAML, and the key reference in
docs/recipes.md.

    python -m edgekit.recipe_schema            # print the JSON schema
    python -m edgekit.recipe_schema --docs     # print the markdown reference
    python -m edgekit.recipe_schema --defaults # print the default recipe
    python -m edgekit.recipe_schema --write    # regenerate edgekit/recipe.schema.json and docs/recipes.md

Key descriptions come from each Config docstring, which names its keys in backquotes: a key gets the
sentences that start with it (`a`: ..., `a`/`b`: ..., `a` does ...; also after a `;`), else the first
sentence that mentions it, looked up in the class's own docstring before its bases'. A key no docstring
names gets no description."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from edgekit import recipe as recipe_module
from edgekit.config import yaml_switch_words
from edgekit.errors import EdgekitError
from edgekit.recipe import Recipe, dump

SCHEMA_FILE = Path(__file__).with_name("recipe.schema.json")
DOCS_FILE = Path(__file__).resolve().parent.parent / "docs" / "recipes.md"
BEGIN = "<!-- BEGIN GENERATED: recipe reference (python -m edgekit.recipe_schema --write) -->"
END = "<!-- END GENERATED -->"
REGENERATE = "python -m edgekit.recipe_schema --write"

_JSON_TYPES = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    type(None): "null",
    dict: "object",
    list: "array",
}
# A sentence ends at ". " before a capital, a backquote or a parenthesis, but not after "e.g." / "i.e.".
_SENTENCE_END = re.compile(r"(?<!e\.g\.)(?<!i\.e\.)(?<=\.)\s+(?=[A-Z`(])")
# The keys a clause starts with: `a`, `a`/`b`, `a`, `b` and `c`.
_LEADING_KEYS = re.compile(r"^((?:`\w+`(?:\s*(?:/|,|\band\b|\bor\b)\s*)?)+)")
_KEY = re.compile(r"`(\w+)`")
_CLAUSE_END = re.compile(r";\s+")


# ---- docstrings -------------------------------------------------------------------------------------------


def own_doc(cls: type) -> str:
    """`cls`'s own docstring on one line ("" when it has none: a dataclass without one gets its signature)."""
    doc = cls.__dict__.get("__doc__") or ""
    if dataclasses.is_dataclass(cls) and doc.startswith(cls.__name__ + "("):
        return ""
    return " ".join(doc.split())


def _depth(text: str) -> int:
    """Brackets open at the end of `text`; "[0, 1)" and "(0, 1]" count as closed."""
    return sum(text.count(c) for c in "([") - sum(text.count(c) for c in ")]")


def _split_outside_parens(text: str, separator: re.Pattern[str]) -> list[str]:
    """`text` split where `separator` matches outside brackets."""
    out, start = [], 0
    for match in separator.finditer(text):
        if _depth(text[: match.start()]) <= 0:
            out.append(text[start : match.start()])
            start = match.end()
    out.append(text[start:])
    return [piece for piece in out if piece]


def sentences(text: str) -> list[str]:
    """`text` split into sentences (not inside brackets, not after "e.g.")."""
    return _split_outside_parens(text, _SENTENCE_END)


def leading_keys(clause: str) -> list[str]:
    match = _LEADING_KEYS.match(clause)
    return _KEY.findall(match.group(1)) if match else []


def key_clauses(sentence: str) -> dict[str, str]:
    """{key: its part of `sentence`}: a `;` clause that starts with keys belongs to them, with the clauses
    that follow it up to the next one that starts with keys ("`a`: x; `b` does y" gives {a: "`a`: x.",
    b: "`b` does y."})."""
    out: dict[str, list[str]] = {}
    owners: list[str] = []
    for clause in _split_outside_parens(sentence, _CLAUSE_END):
        owners = leading_keys(clause) or owners
        for key in owners:
            out.setdefault(key, []).append(clause)
    texts = {key: "; ".join(parts) for key, parts in out.items()}
    return {key: text if text.endswith((".", "?", "!")) else text + "." for key, text in texts.items()}


def _describe(name: str, doc: list[str]) -> str | None:
    """The clauses `name` leads in `doc` (its label dropped), else the first sentence that mentions it."""
    led = [clauses[name] for clauses in map(key_clauses, doc) if name in clauses]
    if led:
        return " ".join(text.removeprefix(f"`{name}`: ") for text in led)
    return next((s for s in doc if f"`{name}`" in s), None)


def key_descriptions(cls: type) -> dict[str, str]:
    """{field: its sentences} from the docstrings of `cls` and then of its bases (see the module doc)."""
    docs = [sentences(own_doc(c)) for c in cls.__mro__[:-1]]
    out: dict[str, str] = {}
    for name in (f.name for f in dataclasses.fields(cls)):
        found = next((d for d in (_describe(name, doc) for doc in docs) if d), None)
        if found:
            out[name] = found
    return out


def section_description(cls: type) -> str:
    """The docstring of `cls`, else of its nearest base that has one."""
    return next((doc for doc in map(own_doc, cls.__mro__[:-1]) if doc), "")


def intro(description: str) -> str:
    """The sentences of a section's description that no key leads (the rest are in the key table)."""
    return " ".join(s for s in sentences(description) if not key_clauses(s))


# ---- JSON schema ------------------------------------------------------------------------------------------


def type_schema(tp: Any) -> dict[str, Any]:
    """The JSON schema of a type hint, as loose or strict as edgekit.config's check of it."""
    origin = get_origin(tp)
    if tp is Any:
        return {}
    if origin is Literal:  # YAML 1.1 reads `off` / `on` as booleans, which edgekit takes for the words
        return {"enum": [*get_args(tp), *yaml_switch_words(tp).keys()]}
    if origin in (typing.Union, types.UnionType):
        parts = [type_schema(a) for a in get_args(tp)]
        if all(list(p) == ["type"] for p in parts):
            return {"type": [p["type"] for p in parts]}
        return {"anyOf": parts}
    if dataclasses.is_dataclass(tp):
        return object_schema(typing.cast(type, tp))
    if (origin or tp) in _JSON_TYPES:  # dict / list: edgekit checks the container, not its items
        return {"type": _JSON_TYPES[origin or tp]}
    raise TypeError(f"no JSON schema for the type hint {tp!r}: add it to edgekit.recipe_schema.type_schema")


def _default(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def field_schema(field: dataclasses.Field, tp: Any, description: str | None) -> dict[str, Any]:
    schema = {"description": description} if description else {}
    schema.update(type_schema(tp))
    if "range" in field.metadata:
        lo, hi, hi_inclusive = field.metadata["range"]
        schema.update({"minimum": lo, "maximum" if hi_inclusive else "exclusiveMaximum": hi})
    default = _default(field)
    if default is not dataclasses.MISSING and not dataclasses.is_dataclass(default):
        schema["default"] = default
    return schema


def object_schema(cls: type) -> dict[str, Any]:
    """A config dataclass as a closed object; null is allowed too, as `prune:` with no keys reads as null."""
    hints = typing.get_type_hints(cls)
    descriptions = key_descriptions(cls)
    description = section_description(cls)
    schema: dict[str, Any] = {"description": description} if description else {}
    schema.update(
        type=["object", "null"],
        additionalProperties=False,
        properties={f.name: field_schema(f, hints[f.name], descriptions.get(f.name)) for f in dataclasses.fields(cls)},
    )
    return schema


def json_schema() -> dict[str, Any]:
    """The JSON schema (draft-07) of a recipe file."""
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "edgekit recipe",
        "description": " ".join((recipe_module.__doc__ or "").split("\n\n")[0].split()),
        **object_schema(Recipe),
        "type": "object",  # a recipe file is a mapping of sections
    }


def schema_text() -> str:
    """json_schema() as edgekit/recipe.schema.json holds it."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def defaults_yaml() -> str:
    """The full recipe with every key at its default, as YAML (loads back to Recipe())."""
    return "# Every recipe key at its default; docs/recipes.md describes each key.\n" + dump(Recipe())


# ---- markdown reference -----------------------------------------------------------------------------------


def _type_text(schema: dict[str, Any]) -> str:
    names = {"object": "mapping", "array": "list"}
    if "enum" in schema:  # the YAML 1.1 booleans are an alias of the words, not choices of their own
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"] if not isinstance(v, bool))
    if "anyOf" in schema:
        return " or ".join(_type_text(s) for s in schema["anyOf"])
    kinds = schema.get("type", "any")
    return " or ".join(names.get(k, k) for k in ([kinds] if isinstance(kinds, str) else kinds))


def _value_text(value: Any) -> str:
    return f"`{value}`" if isinstance(value, str) and value else f"`{json.dumps(value)}`"


def _range_text(schema: dict[str, Any]) -> str:
    if "minimum" not in schema:
        return ""
    if "exclusiveMaximum" in schema:
        return f"[{schema['minimum']}, {schema['exclusiveMaximum']})"
    return f"[{schema['minimum']}, {schema['maximum']}]"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _section_markdown(name: str, section: dict[str, Any]) -> list[str]:
    lines = [f"### `{name}`", ""]
    if intro(section.get("description", "")):
        lines += [_cell(intro(section["description"])), ""]
    lines += ["| key | type / allowed values | default | range | description |", "| --- | --- | --- | --- | --- |"]
    for key, prop in section["properties"].items():
        default = _value_text(prop["default"]) if "default" in prop else ""
        cells = [f"`{key}`", _type_text(prop), default, _range_text(prop), prop.get("description", "")]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines + [""]


def reference_markdown() -> str:
    """The key reference of every recipe section, generated from json_schema()."""
    lines = [
        f"Generated from the config dataclasses by `{REGENERATE}`; edit their docstrings, not this block.",
        "",
    ]
    for name, section in json_schema()["properties"].items():
        lines += _section_markdown(name, section)
    return "\n".join(lines)


def with_reference(doc: str, reference: str) -> str:
    """`doc` with the text between BEGIN and END replaced by `reference`; the text around them is kept."""
    start, end = doc.find(BEGIN), doc.find(END)
    if start < 0 or end < start:
        raise EdgekitError(f"the markdown file has no {BEGIN} ... {END} block: add the two markers where it goes")
    return doc[: start + len(BEGIN)] + "\n" + reference + "\n" + doc[end:]


def generated_block(doc: str) -> str:
    """The text between the markers of `doc` ("" when they are missing), as with_reference writes it."""
    start, end = doc.find(BEGIN), doc.find(END)
    return doc[start + len(BEGIN) + 1 : end - 1] if 0 <= start < end else ""


def write(schema_file: Path = SCHEMA_FILE, docs_file: Path = DOCS_FILE) -> None:
    schema_file.write_text(schema_text())
    docs_file.write_text(with_reference(docs_file.read_text(), reference_markdown()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m edgekit.recipe_schema", description=(__doc__ or "").split("\n\n")[0]
    )
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--docs", action="store_true", help="print the markdown key reference")
    what.add_argument("--defaults", action="store_true", help="print the default recipe as YAML")
    what.add_argument("--write", action="store_true", help=f"regenerate {SCHEMA_FILE.name} and docs/recipes.md")
    args = parser.parse_args(argv)
    if args.write:
        write()
        print(f"wrote {SCHEMA_FILE} and {DOCS_FILE}")
    else:
        sys.stdout.write(reference_markdown() if args.docs else defaults_yaml() if args.defaults else schema_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
