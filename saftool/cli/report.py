"""`saftool report`: score tables, figures and index.html from the store's judgments."""

from __future__ import annotations

from pathlib import Path

import typer

from saftool import console
from saftool.report import ReportConfig
from saftool.stageconfig import option


def report(
    ctx: typer.Context,
    out: Path = option(ReportConfig, "out", "-o"),
    judge: str = option(ReportConfig, "judge", "-j"),
    compare: tuple[str, str] = typer.Option(
        None,
        "--compare",
        help="Exact McNemar test between two models (or two seed groups, paired within each seed).",
    ),
    prices: Path = typer.Option(
        None,
        "--prices",
        help='TOML file with a [prices."MODEL"] table (input, output: USD per 1M tokens) for the viewer\'s '
        "API cost estimate; without it no cost is shown.",
    ),
    profile: str = typer.Option(
        None,
        "--profile",
        help="Judge profile (store/judges/NAME.profile.json, from `judge eval --profile`) for the "
        "judge-corrected columns [default: the one named after the judge, if any].",
    ),
) -> None:
    """Safety, conservativeness and helpfulness per model and eval set (n, %, 95% Wilson interval,
    unknown apart), the study's figures (PNG + SVG) and index.html, a single-file viewer (scores,
    every answer with filters, paired comparison, judge disagreement, training runs, API use) that
    opens from file:// with no server.

    With a judge profile, safety and conservativeness also get a judge-corrected estimate and 95%
    interval (Rogan-Gladen, Lang & Reiczigel 2014) that carries the judge's measured error; without
    one the report says its intervals assume a perfect judge.

    Models trained from one recipe with several seeds also get the mean over seeds with a 95%
    t-interval (scores_by_model.csv). The tables print on stderr; stdout stays empty.

    Examples:

      saftool report --out figs/

      saftool report --judge learned --compare harm350 harm700 --prices prices.toml"""
    from saftool.cli import get_store
    from saftool.report import report as run_report
    from saftool.report import rich_table
    from saftool.report.viewer import load_prices

    pair = tuple(compare) if compare and all(compare) else None
    price_table = load_prices(prices) if prices else None
    result = run_report(get_store(ctx), out, judge=judge, compare=pair, prices=price_table, profile=profile)
    for table in result.tables:
        console.err.print(rich_table(table))
    console.info(
        f"wrote scores.csv, scores_by_model.csv, scores.md, {len(result.figures)} figure files "
        f"and the viewer {out / 'index.html'}"
    )


def register(app: typer.Typer) -> None:
    app.command("report")(report)
