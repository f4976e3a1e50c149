"""`saftool run`: the study's grid end to end, here or on a cluster."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer


def run_stage(argv: list[str]) -> int:
    """Run one saftool command through the real CLI, in this process (no re-import per stage).

    The local executor's runner: the library gets it from here, so it never imports the CLI. A
    stage's records go to the store; what it would print on stdout (train's run record, say) is
    dropped, so `run` itself keeps stdout clean.
    """
    import contextlib

    import typer.main

    from saftool.cli import app

    command = typer.main.get_command(app)
    try:
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            result = command.main(args=argv, prog_name="saftool", standalone_mode=False)
    except Exception as exc:  # a usage error of the generated argv is a bug in the plan; show it
        show = getattr(exc, "show", None)
        if show is None:
            raise
        show()
        return getattr(exc, "exit_code", 2)
    return result if isinstance(result, int) else 0


def run(
    ctx: typer.Context,
    config: Path = typer.Argument(
        None, help="A TOML run config. Without one: the built-in offline study (LoRA fine-tunes of SmolLM2-135M-Instruct, 7 mixes).",
        show_default=False,
    ),
    preset: str = typer.Option(
        None, "--preset", help="'smoke': the same seven-model grid, small (tests, a first look).", show_default=False
    ),
    out: Path = typer.Option(
        None, "--out", help="Report folder [default: the config's `output`, else figs/].", show_default=False
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the plan, one `saftool` command per stage, on stdout; run nothing."
    ),
    show_config: bool = typer.Option(False, "--show-config", help="Print the resolved config as TOML-ready JSON."),
    executor: str = typer.Option(
        None, "--executor", "-x", show_default="local",
        help="Where stages run: local (this machine), slurm (one sbatch job per stage) or ray (one Ray task per "
        "stage). slurm and ray need the store on a filesystem every node sees.",
    ),
    jobs: int = typer.Option(
        None, "--jobs", "-j", min=1, show_default=False,
        help="local: stages at once, in worker processes logging to store/runs/NAME.logs/ [default: one per CPU "
        "core, up to one per model, for tool-built models and for a small packaged base such as smollm2-135m "
        "trained on the CPU (each stage gets its share of the cores), else 1; with several, trainings start "
        "before answers].",
    ),
    wait: bool = typer.Option(
        False, "--wait",
        help="slurm: after submitting, follow the grid to its end. Alone: re-attach to the grid submitted "
        "earlier (from any shell) and follow it.",
    ),
    status: bool = typer.Option(
        False, "--status",
        help="slurm: print each stage of the submitted grid, from any shell: stage, job, state, log (tab-separated).",
    ),
    cancel: bool = typer.Option(False, "--cancel", help="slurm: cancel the submitted grid's jobs, from any shell."),
) -> None:
    """Reproduce the study: gen -> mix (x7) -> train (x7) -> infer -> judge -> report.

    Every stage is an ordinary saftool command; finished stages (same config hash, outputs present)
    are skipped, so a rerun after a kill or a preemption continues where it stopped and a finished
    grid reruns in seconds.

    Examples:

      saftool run                          # offline CPU study, report in figs/index.html

      saftool run --preset smoke           # the same grid, small

      saftool run -j 1                     # one stage at a time, in this process

      saftool run study.toml --dry-run     # one line per stage

      saftool run study.toml -x slurm      # submit; then --status, --wait or --cancel from any shell
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
    # the grid submitted earlier, from any shell; without --executor, by the engine that submitted it
    if status:
        engine, _ = run_lib.attach(executor, cfg, store)
        for line in engine.status():
            sys.stdout.write(line + "\n")
        return
    if cancel:
        run_lib.cancel_submitted(executor, cfg, store)
        return
    if wait and executor is None:
        run_lib.reattach(None, cfg, store)
        return
    engine = run_lib.open_executor(executor, cfg, store, run_lib.ExecutorOptions(jobs=jobs, runner=run_stage))
    background = engine.detaches and not wait
    summary = run_lib.execute(cfg, store, engine, wait=not background)
    if background and not summary.submitted:
        from saftool import console

        console.info(f"grid {cfg.name!r}: every stage is done; nothing submitted")
    elif background:
        import shlex

        from saftool import console

        again = shlex.join(["saftool", "run", *([str(config)] if config else [])])
        console.info(f"follow it with `{again} --wait`, see `{again} --status`, stop it with `{again} --cancel`")


def register(app: typer.Typer) -> None:
    app.command("run")(run)
