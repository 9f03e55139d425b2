"""The typer application: global options, then one function per command (pipeline_cmds, tool_cmds,
recipe_cmds). Nothing here imports torch: `edgekit --help` answers at once."""

from typing import Annotated

import typer

from edgekit.cli import pipeline_cmds, recipe_cmds, search_cmd, tool_cmds

PIPELINE, TOOLS, LANGUAGE = "Compress", "Inspect and measure", "Recipes"

app = typer.Typer(
    name="edgekit",
    help="Compress a CNN image classifier for an edge device (prune, distill, export, int8) and measure every step.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,  # errors are one line (main); tracebacks only with --debug
)


def _version(value: bool) -> None:
    if value:
        from edgekit.version import __version__

        typer.echo(f"edgekit {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    debug: Annotated[bool, typer.Option("--debug", help="show full tracebacks on errors")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="only warnings and errors (no progress)")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="also debug lines")] = False,
    log_file: Annotated[
        str | None,
        typer.Option("--log-file", metavar="FILE", help="append every log line, with timestamps, to FILE"),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """Global options may also follow the command (`edgekit compress lenet5 -q`)."""
    # Read by main() before the command runs (logging must be set up before any line is printed).


app.command("compress", rich_help_panel=PIPELINE)(pipeline_cmds.compress)
app.command("run", rich_help_panel=PIPELINE)(pipeline_cmds.run)
app.command("search", rich_help_panel=PIPELINE)(search_cmd.search)
app.command("models", rich_help_panel=TOOLS)(tool_cmds.models)
app.command("bench", rich_help_panel=TOOLS)(tool_cmds.bench)
app.command("build", rich_help_panel=TOOLS)(tool_cmds.build)
app.command("eval", rich_help_panel=TOOLS)(tool_cmds.eval_cmd)
app.command("profile", rich_help_panel=TOOLS)(tool_cmds.profile)
app.command("doctor", rich_help_panel=TOOLS)(tool_cmds.doctor)
app.command("report", rich_help_panel=TOOLS)(tool_cmds.report)
app.add_typer(recipe_cmds.app, name="recipe", rich_help_panel=LANGUAGE)
