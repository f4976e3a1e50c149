"""`saftool data list` and `saftool data pull`: the public benchmarks and the Alpaca base set."""

from __future__ import annotations

import json
import sys

import typer

data_app = typer.Typer(
    name="data",
    help="Public data sets: list them and pull them into the store as Item records.",
    no_args_is_help=True,
)


@data_app.command("list")
def list_sets(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON record per set on stdout."),
) -> None:
    """Show every known set: rows, kind, licence and whether it is in the store."""
    from saftool import data
    from saftool.cli import get_store

    rows = data.listing(get_store(ctx))
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    from rich.table import Table

    from saftool.console import err

    table = Table("name", "rows", "kind", "licence", "in store")
    table.columns[0].no_wrap = True
    table.columns[1].justify = "right"
    for row in rows:
        table.add_row(
            row["name"], str(row["rows"]), row["kind"], row["licence"], "yes" if row["in_store"] else ""
        )
    err.print(table)


@data_app.command("pull")
def pull(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Set name (see `saftool data list`)."),
    source: str = typer.Option(
        None,
        "--from",
        help="Local CSV/JSON/JSONL copy or http(s) URL to read instead of the registry URL. "
        "A download with the wrong sha256 is rejected; a local file with the wrong sha256 gets a warning.",
    ),
    force: bool = typer.Option(False, "--force", help="Pull again even if the set is in the store."),
) -> None:
    """Download (or import) a set, verify its sha256 and write it to the store as Item JSONL.

    Evaluation sets go to store/evals/NAME.jsonl, training sets (alpaca, safety-tuned-llamas-train)
    to store/prompts/NAME.jsonl. Prints the path on stdout. A second pull does nothing.
    """
    from saftool import data
    from saftool.cli import get_store

    path = data.pull(get_store(ctx), name, source, force=force)
    typer.echo(str(path))


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
