"""`saftool report`: score tables, figures and index.html from the store's judgments."""

from __future__ import annotations

from pathlib import Path

import typer

from saftool import console


def report(
    ctx: typer.Context,
    out: Path = typer.Option(
        Path("figs"), "--out", "-o", help="Folder for scores.csv/md, figures and index.html."
    ),
    judge: str = typer.Option(
        None, "--judge", "-j", help="Whose judgments to score [default: keyword if present]."
    ),
    compare: tuple[str, str] = typer.Option(None, "--compare", help="Exact McNemar test between two models."),
) -> None:
    """Safety, conservativeness and helpfulness per model and eval set (n, %, 95% Wilson interval,
    unknown apart), the study's figures (PNG + SVG) and a self-contained index.html.

    The tables print on stderr; stdout stays empty."""
    from saftool.cli import get_store
    from saftool.report import report as run_report
    from saftool.report import rich_table

    pair = tuple(compare) if compare and all(compare) else None
    result = run_report(get_store(ctx), out, judge=judge, compare=pair)
    for table in result.tables:
        console.err.print(rich_table(table))
    console.info(f"wrote scores.csv, scores.md, {len(result.figures)} figure files and index.html to {out}")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
