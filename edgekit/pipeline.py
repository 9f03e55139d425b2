"""pipeline.run: check inputs, make a fresh run folder, run the stages in order, write the report."""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from torch import nn

import edgekit.distributed as dist
import edgekit.gates as gates
import edgekit.manifest as manifest
import edgekit.report as report
from edgekit.artifact import Artifact, StageRecord
from edgekit.checkpoint import load_weights, read_state_dict
from edgekit.config import as_dict
from edgekit.data import Dataset, load_data
from edgekit.data.arrays import val_arrays
from edgekit.errors import EdgekitError
from edgekit.fileio import atomic_write_text, sha256
from edgekit.progress import RunEta, run_clock
from edgekit.recipe import Recipe, dump, load_recipe
from edgekit.sharding import announce_finished, announce_folder
from edgekit.stages import ORDER, Stage, distill, load, prune
from edgekit.stages.context import Context
from edgekit.stages.search import prunes, searches
from edgekit.stages.work import planned
from edgekit.training import OptimConfig, release, serve
from edgekit.zoo import model_spec, resolve_name
from edgekit.zoo.pretrained import PRETRAINED_KEYWORD, pretrained_state_dict
from edgekit.zoo.user import is_user_name

log = logging.getLogger(__name__)
T = TypeVar("T")
PYTHON_DATA = "python"  # data.name of a run whose data was given from Python


def run_prefix(recipe: Recipe) -> str:
    """The run folder's name prefix: run.name or the model. A name from user input must stay a plain
    folder name inside --output (no path separators, no leading dot, no `..`)."""
    prefix = recipe.run.name or resolve_name(recipe.model.name).replace(":", "-")
    if any(c in prefix for c in "/\\\0") or prefix.startswith(".") or len(prefix) > 200:
        raise EdgekitError(
            f"run.name {prefix!r} must be a plain folder name: remove slashes and leading dots (and keep it under "
            "200 characters)"
        )
    return prefix


def make_run_dir(recipe: Recipe) -> Path:
    """A new folder, never an existing one: timestamp plus a random suffix, created exclusively."""
    prefix = run_prefix(recipe)  # before anything is created
    root = Path(recipe.run.output)
    try:
        root.mkdir(parents=True, exist_ok=True)
        if not os.access(root, os.W_OK):
            raise PermissionError(root)
    except OSError as exc:
        raise EdgekitError(
            f"output folder {root} is not writable ({exc.__class__.__name__}): choose another with --output"
        ) from None
    if recipe.run.dir:
        return _exact_run_dir(root, recipe.run.dir)
    for _ in range(100):
        path = root / f"{time.strftime('%Y%m%d-%H%M%S')}-{prefix}-{secrets.token_hex(2)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as exc:  # e.g. a full disk: one line, not a traceback
            raise EdgekitError(
                f"could not create the run folder {path} ({exc.strerror or type(exc).__name__}): free disk space or "
                "choose another --output"
            ) from None
    raise EdgekitError(f"could not create a unique run folder in {root}: clean up old runs")


def _exact_run_dir(root: Path, given: str) -> Path:
    """`run.dir`: a plain name inside the output folder, or a path; created exclusively, never reused."""
    path = root / given if len(Path(given).parts) == 1 else Path(given)
    if Path(given).name in ("", ".", ".."):
        raise EdgekitError(f"run.dir {given!r} names no folder: give a new folder name, e.g. --run-dir nightly-42")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir()
    except FileExistsError:
        raise EdgekitError(
            f"run folder {path} already exists: give a new --run-dir (an earlier run is never overwritten), or "
            f"continue that run with --resume {path}"
        ) from None
    except OSError as exc:
        raise EdgekitError(
            f"could not create the run folder {path} ({exc.strerror or type(exc).__name__}): give a writable --run-dir"
        ) from None
    return path


# Stage order rules, all in one place: (broken, message). Each message names the problem and the fix.
ORDER_RULES = [
    (
        lambda r: r.qat.mode == "on" and not r.quantize.enabled,
        "qat.mode is on but quantize.enabled is false, so nothing would be quantized: add --int8 (quantize.enabled: "
        "true) or drop --qat on",
    ),
    (
        lambda r: r.quantize.enabled and r.qat.mode == "on" and not r.quantize.check_drop,
        "qat.mode is on but quantize.check_drop is false, and QAT runs only inside the int8 accuracy check: set "
        "quantize.check_drop: true or drop --qat on",
    ),
    (
        lambda r: r.distill.teacher is not None and not prunes(r),
        "distill.teacher is set but nothing is pruned, so the distill stage never runs: set --prune RATIO (or a "
        "--target-*) or remove distill.teacher",
    ),
    (
        lambda r: searches(r.search) and prune.runs(r.prune),
        "search.target_* is set, so the search chooses every layer's ratio, but prune.ratio, prune.target_* or "
        "prune.layer_ratios is set too: remove them (or remove the search target to prune as the prune section says)",
    ),
]


def check_order(recipe: Recipe) -> None:
    """Stage combinations that cannot do what the recipe asks (the export stage always runs, so int8
    always has its ONNX source)."""
    for broken, message in ORDER_RULES:
        if broken(recipe):
            raise EdgekitError(message)


def check_inputs(recipe: Recipe, model: nn.Module | None = None, data: Dataset | None = None) -> None:
    """Fail before any folder is made: unknown model, bad run name, stage order, missing or unreadable
    weights (a readable, safe state_dict; whether it fits the model is known once the data is loaded), and
    a recipe that names a model or data given from Python without them."""
    if model is None and is_user_name(recipe.model.name):
        raise EdgekitError(
            f"model {recipe.model.name} was given from Python and cannot be rebuilt from a recipe: "
            "run it again with edgekit.compress(model, ...)"
        )
    if data is None and recipe.data.name == PYTHON_DATA:
        raise EdgekitError(
            "the data of this recipe was given from Python: run it again with edgekit.compress(..., train=..., val=...)"
        )
    resolve_name(recipe.model.name)
    run_prefix(recipe)
    check_order(recipe)
    if recipe.model.weights == PRETRAINED_KEYWORD:
        pretrained_state_dict(resolve_name(recipe.model.name))  # installed? (an error says what to install)
    elif recipe.model.weights:
        read_state_dict(recipe.model.weights)
    distill.check_inputs(recipe.distill)
    check_world(recipe)
    if recipe.target.platform == "openvino":
        from edgekit.backends.openvino_cpu import require_openvino

        require_openvino()


def check_world(recipe: Recipe) -> None:
    """In a distributed run every training section's global batch must split evenly among the processes."""
    world = dist.world_size()
    if world == 1:
        return
    for name in ("train", "distill", "qat", "rewrite"):
        cfg = getattr(recipe, name)
        if isinstance(cfg, OptimConfig):
            dist.check_batch(name, cfg.batch_size, world)


_LEADING: list[bool] = []  # inside lead(): the CLI leads and calls the API, which leads too


def lead(work: Callable[[], T]) -> T | None:
    """Run `work` (pipeline.run or resume) in a distributed run's process group: rank 0 does it and
    writes the run folder; the other ranks train inside its fit calls (and take their share of its
    evaluations) and return None. In one process, or inside another lead, just `work()`."""
    if _LEADING:
        return work()
    with dist.group():
        if not dist.is_main():
            logging.getLogger("edgekit").setLevel(logging.WARNING)  # one process prints the run
            serve()
            return None
        _LEADING.append(True)
        try:
            result = work()
            if dist.world_size() > 1:
                announce_finished()
            return result
        finally:
            _LEADING.clear()
            if dist.world_size() > 1:
                release()


def _announce(run_dir: Path) -> None:
    """Tell the other ranks of a led distributed run where rank 0 writes (their API call returns it)."""
    if _LEADING and dist.world_size() > 1:
        announce_folder(str(run_dir))


def default_input_px(recipe: Recipe) -> int:
    """The model's default input side (its paper's): the most an image folder is read at by default."""
    name = recipe.model.name
    if is_user_name(name) or ":" in name:
        return 224
    return model_spec(name).input_size[-1]


def run(recipe: Recipe, *, model: nn.Module | None = None, data: Dataset | None = None) -> Artifact:
    """Run `recipe` in a new run folder. `model` and `data` (from edgekit.compress) replace what the
    recipe names (`model.name` python:CLASS, `data.name` python); the recipe records that they did."""
    check_inputs(recipe, model, data)
    data = data if data is not None else load_data(recipe.data, default_input_px(recipe))
    run_dir = make_run_dir(recipe)
    _announce(run_dir)
    atomic_write_text(run_dir / "recipe.yaml", dump(recipe))
    log.info("run folder: %s", run_dir)
    return _execute(recipe, Context(recipe, data, run_dir, model), Artifact(run_dir), done=set())


def resume(run_dir: str | Path) -> Artifact:
    """Continue a run after its last finished stage (Ctrl-C, a killed process, a power cut): the recipe
    and the finished stages come from the run folder, every file they made is checked against the
    manifest's hash, and torch models are rebuilt from their checkpoints. A stage that was cut off
    starts again, from its last epoch checkpoint where it has one (train, distill)."""
    run_dir = Path(run_dir)
    _announce(run_dir)
    saved = manifest.read(run_dir)
    recipe_file = run_dir / "recipe.yaml"
    if not recipe_file.is_file() or sha256(recipe_file) != saved["recipe_sha256"]:
        raise EdgekitError(
            f"{recipe_file} is missing or changed since the run started: a resumed run must use its own recipe; "
            f"start a new run with `edgekit run {recipe_file}`"
        )
    recipe = load_recipe(recipe_file)
    check_inputs(recipe)
    _check_same_world(run_dir, manifest.run_info(saved).world_size)
    history = manifest.records(saved)
    done = {r.name for r in history}
    if all(stage.name in done for stage in ORDER):
        raise EdgekitError(
            f"{run_dir} finished every stage: nothing to resume; start a new run with `edgekit run {recipe_file}`"
        )
    entries = manifest.verified_entries(run_dir, saved)
    ctx = Context(recipe, load_data(recipe.data, default_input_px(recipe)), run_dir)
    art = Artifact(run_dir, history=history, info=manifest.run_info(saved))
    for e in entries:
        module = None
        if e["format"] == "torch":
            module = load.build_model(recipe.model, ctx)
            load_weights(module, e["path"], resolve_name(recipe.model.name), ctx.data.input_size)
            module.eval()
        entry = manifest.entry(e, module)
        art.entries[entry.role] = entry
    last = history[-1].name if history else "nothing"
    art.info.resumed.append({"after": last, "at": time.strftime("%Y-%m-%d %H:%M:%S"), "files_verified": len(entries)})
    log.info(f"resuming {run_dir} after {last}: {len(entries)} files verified against the manifest")
    return _execute(recipe, ctx, art, done)


def _check_same_world(run_dir: Path, started: int) -> None:
    """A run resumes with the process count it started with: each process's shard of every batch, and so
    the epoch checkpoint's continuation, depends on it."""
    now = dist.world_size()
    if now != started:
        how = f"--nproc {started}" if started > 1 else "in one process (without --nproc or torchrun)"
        raise EdgekitError(
            f"{run_dir} was started with {started} process(es) and this resume has {now}: resume it {how}, e.g. "
            f"edgekit run --resume {run_dir}" + (f" --nproc {started}" if started > 1 else "")
        )


def _execute(recipe: Recipe, ctx: Context, art: Artifact, done: set[str]) -> Artifact:
    """Run the stages not in `done`; after each, record it in the manifest (so a resume starts after
    it) and judge the accuracy gates."""
    recipe_sha = sha256(art.run_dir / "recipe.yaml")
    art.info.gate_config = as_dict(recipe.gate)
    art.info.max_drop = recipe.gate.max_drop
    art.info.target = recipe.target.platform
    art.info.world_size, art.info.backend = dist.world_size(), dist.backend()
    gate_failed = None
    eta = RunEta({})
    for stage in ORDER:
        if stage.name in done:
            continue
        cfg = getattr(recipe, stage.section)
        reason = stage.skip(art, cfg, ctx)
        if gate_failed and not recipe.gate.keep_going:
            reason = f"an earlier stage failed its accuracy gate ({gate_failed}); --keep-going runs later stages anyway"
        if reason:
            art.history.append(StageRecord(stage.name, 0.0, as_dict(cfg), {"skipped": reason}))
            manifest.write(art, recipe_sha)
            continue
        eta.begin(stage.name, planned(_from(stage, done), art, ctx))
        log.info(f"== {stage.name}  | {eta.line()}")
        start = time.perf_counter()
        before = set(art.entries)
        try:
            with run_clock(eta):  # the training loop's progress lines show the run's ETA too
                metrics = stage.run(art, cfg, ctx)
            _check_contract(stage, art, before)
            verdict = _judge(stage.name, art, before, recipe, ctx)
        except (EdgekitError, KeyboardInterrupt) as exc:
            # Keep what finished: the run folder gets a report that names the failed stage.
            seconds = round(time.perf_counter() - start, 2)
            art.history.append(
                StageRecord(stage.name, seconds, as_dict(cfg), {"failed": str(exc) or type(exc).__name__})
            )
            report.write(art, status=f"failed in {stage.name}", error=str(exc) or type(exc).__name__)
            if isinstance(exc, EdgekitError):
                exc.run_dir = art.run_dir
            if isinstance(exc, KeyboardInterrupt):
                log.info(f"\ninterrupted in {stage.name}: continue with `edgekit run --resume {art.run_dir}`")
            raise
        if isinstance(metrics.get("failed"), str):  # the stage's own accuracy check (quantize's int8 drop)
            gate_failed = gate_failed or f"{stage.name}: {metrics['failed']}"
            log.info(f"{stage.name} failed: {metrics['failed']}")
        if verdict:
            metrics["gate"] = verdict
            if verdict["failed"]:
                metrics["failed"] = f"accuracy gate: {verdict['failed']}"
                gate_failed = gate_failed or f"{stage.name}: {verdict['failed']}"
                log.info(f"gate: {stage.name} failed: {verdict['failed']}")
        art.history.append(StageRecord(stage.name, round(time.perf_counter() - start, 2), as_dict(cfg), metrics))
        manifest.write(art, recipe_sha)
        eta.finish()
    art.info.ship = gates.ship(art)
    if gate_failed:
        report.write(art, status="failed accuracy gate", error=gate_failed)
        ship = art.info.ship
        failure = gates.GateFailed(
            f"accuracy gate failed in {gate_failed}: "
            + (
                f"ship {ship['artifact']} (it passed); see {art.run_dir / 'report.md'}"
                if ship
                else f"no artifact passed; see {art.run_dir / 'report.md'}"
            )
            + " or relax --max-drop"
        )
        failure.run_dir = art.run_dir
        raise failure
    report.write(art)
    return art


def _from(stage: Stage, done: set[str]) -> list[Stage]:
    """`stage` and the stages after it that are still to run: the work the run's ETA counts."""
    return [s for s in ORDER[ORDER.index(stage) :] if s.name not in done]


def _check_contract(stage: Stage, art: Artifact, before: set) -> None:
    """A stage adds only the roles it declares: the gates and the report rely on the declaration."""
    undeclared = sorted(r.value for r in set(art.entries) - before if r not in stage.produces)
    if undeclared:
        raise RuntimeError(f"stage {stage.name} made {', '.join(undeclared)} but declares only {stage.produces}")


def _judge(stage: str, art: Artifact, before: set, recipe: Recipe, ctx: Context) -> dict | None:
    """The accuracy gates' verdict on what `stage` made. The validation arrays are prepared on the first
    measurement of a check and shared by every model it measures."""
    cfg = recipe.gate
    val: list = []

    def top1(entry):
        if not val:
            val.append(gates.measured_top1(val_arrays(ctx.data, cfg.images)))
        return val[0](entry)

    return gates.check(stage, art, before, cfg, top1, cfg.images or len(ctx.data.val))
