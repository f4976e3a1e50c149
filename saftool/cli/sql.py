"""`saftool sql`: ad-hoc DuckDB queries over the store."""

from __future__ import annotations

import csv
import json
import sys

import typer

from saftool import sql as sql_lib


def sql(
    ctx: typer.Context,
    query: str = typer.Argument(..., help="SQL; the views are prompts, evals, mixes, manifests, responses, judgments, train_runs."),
    as_json: bool = typer.Option(False, "--json", help="Print rows as JSONL on stdout."),
    as_csv: bool = typer.Option(False, "--csv", help="Print rows as CSV on stdout."),
) -> None:
    """Run DuckDB SQL over the store's JSONL, one view per record kind.

    Example: saftool sql "SELECT model, count(*) FROM responses GROUP BY model"
    """
    from saftool.cli import get_store

    columns, rows = sql_lib.query(get_store(ctx), query)
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(dict(zip(columns, row)), default=str, ensure_ascii=False) + "\n")
    elif as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(*columns)
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row))
        Console().print(table)


def register(app: typer.Typer) -> None:
    app.command("sql")(sql)
