"""pipeline.run: check inputs, make a fresh run folder, run the stages in order, write the report."""
from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from edgekit.artifact import Artifact, StageRecord
from edgekit.config import as_dict
from edgekit.data import load_data
from edgekit.errors import EdgekitError
from edgekit.fileio import atomic_write_text
from edgekit.recipe import Recipe, dump
from edgekit.stages import ORDER
from edgekit.stages.context import Context
from edgekit.zoo import resolve_name


def make_run_dir(recipe: Recipe) -> Path:
    """A new folder, never an existing one: timestamp plus a random suffix, created exclusively."""
    root = Path(recipe.run.output)
    try:
        root.mkdir(parents=True, exist_ok=True)
        if not os.access(root, os.W_OK):
            raise PermissionError(root)
    except OSError as exc:
        raise EdgekitError(f"output folder {root} is not writable ({exc.__class__.__name__}): choose another with --output") from None
    prefix = recipe.run.name or resolve_name(recipe.model.name).replace(":", "-")
    if "/" in prefix or prefix.startswith("."):
        raise EdgekitError(f"run.name {prefix!r} must be a plain folder name: remove slashes and leading dots")
    for _ in range(100):
        path = root / f"{time.strftime('%Y%m%d-%H%M%S')}-{prefix}-{secrets.token_hex(2)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise EdgekitError(f"could not create a unique run folder in {root}: clean up old runs")


def check_inputs(recipe: Recipe) -> None:
    """Fail before any folder is made: unknown model, missing weights."""
    resolve_name(recipe.model.name)
    if recipe.model.weights and not Path(recipe.model.weights).is_file():
        raise EdgekitError(f"checkpoint {recipe.model.weights} does not exist: check the --weights path")


def run(recipe: Recipe) -> Artifact:
    from edgekit import report

    check_inputs(recipe)
    data = load_data(recipe.data)
    run_dir = make_run_dir(recipe)
    atomic_write_text(run_dir / "recipe.yaml", dump(recipe))
    print(f"run folder: {run_dir}", flush=True)
    ctx = Context(recipe, data, run_dir)
    art = Artifact(run_dir)
    for stage in ORDER:
        cfg = getattr(recipe, stage.SECTION)
        reason = stage.skip(art, cfg, ctx)
        if reason:
            art.history.append(StageRecord(stage.NAME, 0.0, as_dict(cfg), {"skipped": reason}))
            continue
        print(f"== {stage.NAME}", flush=True)
        start = time.perf_counter()
        try:
            metrics = stage.run(art, cfg, ctx)
        except (EdgekitError, KeyboardInterrupt) as exc:
            # Keep what finished: the run folder gets a report that names the failed stage.
            seconds = round(time.perf_counter() - start, 2)
            art.history.append(StageRecord(stage.NAME, seconds, as_dict(cfg), {"failed": str(exc) or type(exc).__name__}))
            report.write(art, status=f"failed in {stage.NAME}", error=str(exc) or type(exc).__name__)
            raise
        art.history.append(StageRecord(stage.NAME, round(time.perf_counter() - start, 2), as_dict(cfg), metrics))
    report.write(art)
    return art
