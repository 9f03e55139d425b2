"""The layer table of docs/architecture.md, enforced: every import (module level or inside a function) is
an edge; no module imports a layer above its own, and no two modules import each other, even indirectly."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "edgekit"
RUN, STAGE, LIBRARY, GROUND = 3, 2, 1, 0
LAYERS = {
    RUN: (
        "api",
        "cli",
        "pipeline",
        "gates",
        "recipe",
        "recipe_schema",
        "report",
        "report_table",
        "report_html",
        "report_compare",
        "report_profile",
        "report_sections",
        "tools",
        "doctor",
        "manifest",
        "__main__",
    ),
    STAGE: ("stages",),
    LIBRARY: (
        "export",
        "pruning",
        "quant",
        "distill",
        "training",
        "training_state",
        "training_layout",
        "backends",
        "data",
        "zoo",
        "envinfo",
        "rewrite",
        "search",
    ),
    GROUND: (
        "__init__",
        "artifact",
        "config",
        "registry",
        "errors",
        "fileio",
        "cache",
        "paths",
        "seeding",
        "target",
        "metrics",
        "progress",
        "accelerator",
        "logs",
        "version",
        "jetson",
        "checkpoint",
        "state_layout",
        "distributed",
        "sharding",
    ),
}


def modules() -> dict[str, Path]:
    out = {}
    for f in ROOT.rglob("*.py"):
        parts = f.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = f
    return out


def layer_of(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    return next(level for level, names in LAYERS.items() if top in names)


def edges(mods: dict[str, Path]) -> dict[str, set[str]]:
    out = {}
    for name, path in mods.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for target in found:
                while target not in mods and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in mods and target != name and target.startswith("edgekit"):
                    targets.add(target)
        out[name] = targets
    return out


def test_every_module_has_a_layer():
    unplaced = []
    for m in modules():
        try:
            layer_of(m)
        except StopIteration:
            unplaced.append(m)
    assert not unplaced, f"add these to LAYERS (and docs/architecture.md): {unplaced}"


def test_imports_only_point_down():
    mods = modules()
    # the package __init__ re-exports the zoo and (lazily) the API: public aliases, not dependencies
    up = [
        f"{m} -> {t}"
        for m, ts in edges(mods).items()
        for t in ts
        if layer_of(t) > layer_of(m) and not (m == "edgekit" and t.startswith(("edgekit.zoo", "edgekit.api")))
    ]
    assert not up, up


def test_no_import_cycles() -> None:
    graph = edges(modules())
    # a package's __init__ re-exporting its own modules is not a cycle of the design
    for m, ts in graph.items():
        graph[m] = {t for t in ts if not (t.startswith(m + ".") or m.startswith(t + ".")) and t != "edgekit"}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt) :] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, cycles[:5]
