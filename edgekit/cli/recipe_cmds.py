"""`edgekit recipe ...`: the recipe language itself: its JSON schema (for editors), its defaults, and a
check of a recipe file that lists every problem at once."""

from typing import Annotated

import typer

from edgekit.cli.output import emit_json

app = typer.Typer(
    name="recipe",
    help="The recipe language: its JSON schema, its defaults, and a check of a recipe file.",
    no_args_is_help=True,
)


@app.command()
def schema(
    output: Annotated[
        str | None, typer.Option("--output", "-o", metavar="FILE", help="write the schema to FILE instead of stdout")
    ] = None,
) -> None:
    """Print the recipe's JSON schema (for the YAML language server: `# yaml-language-server: $schema=FILE`)."""
    import json

    from edgekit.recipe_schema import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    from edgekit.fileio import atomic_write_text

    atomic_write_text(output, text)
    typer.echo(f"wrote {output}")


@app.command()
def defaults() -> None:
    """Print the full default recipe as YAML: every section and key, with its default value."""
    from edgekit.recipe_schema import defaults_yaml

    typer.echo(defaults_yaml(), nl=False)


@app.command()
def check(
    recipe: Annotated[str, typer.Argument(metavar="FILE", help="recipe YAML file")],
    json_output: Annotated[bool, typer.Option("--json", help="print one JSON object on stdout")] = False,
) -> None:
    """Validate a recipe file: every problem at once (exit 2), or the resolved recipe's summary (exit 0)."""
    from edgekit.recipe import load_recipe

    resolved = load_recipe(recipe)
    if json_output:
        from edgekit.config import as_dict

        emit_json({"schema_version": 1, "file": recipe, "valid": True, "recipe": as_dict(resolved)})
        return
    typer.echo(f"{recipe}: valid (model {resolved.model.name or 'not set: give it on the command line'})")
