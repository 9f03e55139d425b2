"""`edgekit compress` and `edgekit run`: build a Recipe from the flags (and a recipe file) and hand it to
the Python API (edgekit.api.run_recipe). With --json, stdout holds one JSON object whatever happens."""

from pathlib import Path
from typing import Annotated, Any

import typer

from edgekit.cli.output import emit_json
from edgekit.cli.pipeline_options import ModelArg, RecipeOption, given_with_resume, overrides, with_pipeline_options
from edgekit.errors import EdgekitError

RUN_JSON_VERSION = 1  # the --json object of compress / run


def _resume_or_none(flags: dict[str, Any], positional: tuple[str, Any]) -> Any:
    """Handle --resume: the run folder's own recipe, nothing else (a resumed run must stay reproducible)."""
    if not flags.get("resume"):
        return None
    given = given_with_resume(flags, positional)
    if given:
        raise EdgekitError(
            f"--resume continues a run with its own recipe, so {', '.join(given)} cannot be given with it: drop them, "
            "or start a new run"
        )
    import edgekit.pipeline as pipeline
    from edgekit.api import Run

    return Run.of(pipeline.resume(flags["resume"]))


def _result(run: Any) -> dict[str, Any]:
    report = run.report
    return {
        "schema_version": RUN_JSON_VERSION,
        "status": "ok",  # finished; `ship` is null when no deliverable stayed within the allowed drop
        "exit_code": 0,
        "run_dir": str(run.run_dir),
        "ship": str(run.ship) if run.ship else None,
        "report": str(Path(run.run_dir) / "report.json"),
        "error": None,
        "results": report.get("results", []),
    }


def _failure(exc: EdgekitError) -> dict[str, Any]:
    """The JSON object of a run that ended in an error: bad input (exit 2, usually before any run folder)
    or a failed stage or gate (exit 1, with the folder and what its report.json recorded)."""
    out: dict[str, Any] = {
        "schema_version": RUN_JSON_VERSION,
        "status": "failed" if exc.exit_code == 1 else "error",
        "exit_code": exc.exit_code,
        "run_dir": str(exc.run_dir) if exc.run_dir else None,
        "ship": None,
        "report": None,
        "error": str(exc),
        "results": [],
    }
    report_file = Path(exc.run_dir) / "report.json" if exc.run_dir else None
    if report_file is not None and report_file.is_file():
        import json

        from edgekit.report import ship_file

        report = json.loads(report_file.read_text())
        ship = ship_file(report, Path(report_file.parent))
        out.update(report=str(report_file), results=report.get("results", []), ship=str(ship) if ship else None)
    return out


LAUNCH_FLAGS = ("--nproc", "--master-port")


def without_launch_flags(argv: list[str]) -> list[str]:
    """`argv` less --nproc N and --master-port P (either form): the command each process runs."""
    out: list[str] = []
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in LAUNCH_FLAGS:
            skip = True
        elif not word.startswith(tuple(f + "=" for f in LAUNCH_FLAGS)):
            out.append(word)
    return out


def _launched(flags: dict[str, Any]) -> int | None:
    """--nproc N (N > 1) outside torchrun: run this command line in N processes; their exit code."""
    import edgekit.distributed as dist

    nproc, port = flags.get("nproc"), flags.get("master_port")
    if dist.world_size() > 1:  # already one of the processes (torchrun, or our own launch)
        if nproc is not None and nproc != dist.world_size():
            raise EdgekitError(
                f"--nproc {nproc} under torchrun, which started {dist.world_size()} processes: drop --nproc "
                "(torchrun's --nproc-per-node and --nnodes set the process count)"
            )
        return None
    if port is not None and nproc is None:
        raise EdgekitError("--master-port applies only with --nproc N: add --nproc or drop --master-port")
    if nproc is None or nproc == 1:
        return None
    from edgekit.cli.argv import ARGV

    return dist.launch(without_launch_flags(ARGV), nproc, port)


def execute(build_recipe: Any, flags: dict[str, Any], positional: tuple[str, Any]) -> None:
    """Run (or resume) and print the outcome as JSON when asked; errors still reach main's one-line path.
    In a distributed run rank 0 does all this; the other ranks only train (pipeline.lead) and print nothing."""
    json_output = flags.get("json_output", False)
    try:
        code = _launched(flags)
        if code is not None:
            raise typer.Exit(code)  # the processes printed the outcome (and rank 0 its one-line error)
        import edgekit.pipeline as pipeline

        run = pipeline.lead(lambda: _run_or_resume(build_recipe, flags, positional))
    except EdgekitError as exc:
        if json_output:
            emit_json(_failure(exc))
        raise
    if json_output and run is not None and run is not PRINTED:
        emit_json(_result(run))


PRINTED = object()  # --print-recipe: the recipe was printed, nothing ran


def _run_or_resume(build_recipe: Any, flags: dict[str, Any], positional: tuple[str, Any]) -> Any:
    run = _resume_or_none(flags, positional)
    if run is None:
        recipe = build_recipe()
        if flags.get("print_recipe"):
            from edgekit.recipe import dump

            typer.echo(dump(recipe), nl=False)
            return PRINTED
        from edgekit.api import run_recipe

        run = run_recipe(recipe)
    return run


@with_pipeline_options
def compress(
    model: ModelArg = None,
    recipe: RecipeOption = None,
    **flags: Any,
) -> None:
    """Train or load MODEL, prune, distill, export ONNX, quantize to int8, validate and report.

    The flags build a recipe, written resolved into the run folder. Example:
    edgekit compress mobilenet_v3 --prune 0.3 --int8
    """

    def build() -> Any:
        from edgekit.recipe import from_dict, load_recipe

        if not model:
            raise EdgekitError(
                "compress needs a MODEL (e.g. edgekit compress mobilenet_v3 --prune 0.3 --int8) or --resume RUN_DIR"
            )
        over = {"model.name": model, **overrides(flags)}
        return load_recipe(recipe, over) if recipe else from_dict({}, "command line", over)

    positional = ("MODEL" if model else "--recipe", model or recipe)
    execute(build, flags, positional)


@with_pipeline_options
def run(
    recipe: Annotated[
        str | None,
        typer.Argument(
            metavar="RECIPE",
            help="recipe YAML file, e.g. recipes/mobilenet_v3_fashion_mnist.yaml or artifacts/<run>/recipe.yaml",
            show_default=False,
        ),
    ] = None,
    **flags: Any,
) -> None:
    """Run the pipeline from a recipe YAML file; flags override its values.

    artifacts/<run>/recipe.yaml reproduces a run.
    """

    def build() -> Any:
        from edgekit.recipe import RUN_REQUIRED, load_recipe

        if not recipe:
            raise EdgekitError(
                "run needs a RECIPE file (e.g. edgekit run recipes/mobilenet_v3_fashion_mnist.yaml) or --resume RUN_DIR"
            )
        return load_recipe(recipe, overrides(flags), RUN_REQUIRED)

    execute(build, flags, ("RECIPE", recipe))
