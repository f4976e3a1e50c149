"""The `saftool` command: a thin layer over the library.

The root app only composes one module per command; each command parses options, calls the library
and lets `SaftoolGroup` turn typed errors into one line on stderr and an exit code.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from saftool import __version__, console
from saftool.errors import SaftoolError
from saftool.store import STORE_ENV, Store


class SaftoolGroup(TyperGroup):
    """Maps library errors to `error: ...` on stderr and their exit code; Ctrl-C exits 130."""

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except SaftoolError as exc:
            console.err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            console.err.print("interrupted", markup=False)
            raise typer.Exit(130) from None
        except BrokenPipeError:  # `saftool ... | head`: the reader left; not an error
            raise typer.Exit(0) from None


app = typer.Typer(
    cls=SaftoolGroup,
    name="saftool",
    help=(
        "Safety-tuning research toolkit.\n\n"
        "Stages: gen (harmful prompts + refusals) -> mix (into an instruction set) -> train -> "
        "infer -> judge -> report; `run` does them all from one config. Every stage reads and writes "
        "JSONL records in the store (--store, SAFTOOL_STORE, or ./store); `-` means stdin/stdout."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"saftool {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    store: Path = typer.Option(
        None, "--store", envvar=STORE_ENV, help="Store root folder [default: ./store].", show_default=False
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or status lines on stderr."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    console.set_quiet(quiet)
    ctx.obj = Store(store)


def get_store(ctx: typer.Context) -> Store:
    """The store chosen at the root (works for nested sub-commands too)."""
    root_ctx = ctx.find_root()
    return root_ctx.obj if isinstance(root_ctx.obj, Store) else Store()


def given_options(ctx: typer.Context, names: Iterable[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The options among `names` the user set (on the command line or through an environment
    variable), and the flag that spells each: an engine checks those against the options it takes
    and keeps its own defaults for the rest, so a flag left at its default never trips an engine
    that does not take it."""
    wanted = set(names)
    values: dict[str, Any] = {}
    flags: dict[str, str] = {}
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)  # by name: Typer carries its own copy of click
        if param.name in wanted and source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP"):
            values[param.name] = ctx.params[param.name]
            flags[param.name] = max(param.opts, key=len)
    return values, flags


def _register_commands() -> None:
    from saftool.cli import data, export, gen, infer, judge, mix, model, report, run, sql, train

    for module in (gen, mix, data, model, run, sql, train, export, infer, judge, report):
        module.register(app)


_register_commands()


def main() -> None:
    from saftool.devices import yielding_cpu_threads

    yielding_cpu_threads()  # before any command loads torch
    app()
