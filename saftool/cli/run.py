"""`saftool run`: the study's grid end to end."""

from __future__ import annotations

import sys
from pathlib import Path

import typer


def run(
    ctx: typer.Context,
    config: Path = typer.Argument(
        None, help="A TOML run config. Without one: the built-in offline CPU study (tiny models, 7 mixes).",
        show_default=False,
    ),
    preset: str = typer.Option(
        None, "--preset", help="'smoke': the same seven-model grid, small (tests, a first look).", show_default=False
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the plan, one `saftool` command per stage, on stdout; run nothing."
    ),
    out: Path = typer.Option(
        None, "--out", help="Report folder [default: the config's `output`, else figs/].", show_default=False
    ),
    show_config: bool = typer.Option(False, "--show-config", help="Print the resolved config as TOML-ready JSON."),
    jobs: int = typer.Option(
        None, "--jobs", "-j", min=1, show_default=False,
        help="Stages at once, in worker processes logging to store/runs/NAME.logs/ [default: one per CPU core "
        "for tool-built models (they train on one thread each), else 1].",
    ),
) -> None:
    """Reproduce the study: gen -> mix (x7) -> train (x7) -> infer -> judge -> report.

    Every stage is an ordinary saftool command; finished stages (same config hash, outputs present)
    are skipped, so a rerun after a kill continues where it stopped and a finished grid reruns in
    seconds.

    Examples:

      saftool run                          # offline CPU study, report in figs/index.html

      saftool run --preset smoke           # the same grid, small

      saftool run -j 1                     # one stage at a time, in this process

      saftool run study.toml --dry-run     # one line per stage, e.g. for a SLURM array
    """
    from saftool import run as run_lib
    from saftool.cli import get_store
    from saftool.errors import UsageError

    store = get_store(ctx)
    cfg = run_lib.load_config(config)
    if preset == "smoke":
        cfg = run_lib.smoke(cfg)
    elif preset is not None:
        raise UsageError(f"unknown run preset {preset!r}; choose one of: smoke")
    if out is not None:
        cfg = cfg.model_copy(update={"output": str(out)})
    if show_config:
        sys.stdout.write(cfg.model_dump_json(indent=2) + "\n")
        return
    if dry_run:
        for line in run_lib.dry_run_lines(cfg, store):
            sys.stdout.write(line + "\n")
        return
    run_lib.execute(cfg, store, jobs=jobs or run_lib.default_jobs(cfg))


def register(app: typer.Typer) -> None:
    app.command("run")(run)
