"""stderr output: messages and progress bars. stdout is reserved for records."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

# soft_wrap: paths and commands in messages must not be folded at 80 columns in logs and pipes
err = Console(stderr=True, highlight=False, soft_wrap=True)

_quiet = False


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet


def info(message: str) -> None:
    """A status line on stderr (suppressed by --quiet)."""
    if not _quiet:
        err.print(message, markup=False)


def warn(message: str) -> None:
    err.print(f"warning: {message}", markup=False, style="yellow")


def progress_enabled() -> bool:
    """Bars show on a terminal; they hide under --quiet, in a pipe, or with SAFTOOL_NO_PROGRESS."""
    if _quiet or os.environ.get("SAFTOOL_NO_PROGRESS"):
        return False
    return sys.stderr.isatty() and sys.stdout.isatty()


class _Task:
    """Handle a stage uses to advance its bar; a no-op when bars are hidden."""

    def __init__(self, progress, task_id):
        self._progress = progress
        self._id = task_id

    def advance(self, n: float = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._id, n)

    def update(self, **kwargs) -> None:
        if self._progress is not None:
            self._progress.update(self._id, **kwargs)


_active = None  # the live rich Progress, shared so nested bars (run -> stage) don't clash


@contextmanager
def progress(description: str, total: float | None) -> Iterator[_Task]:
    """A rich progress bar on stderr with elapsed and remaining time.

    Nested calls (a `run` bar around a stage's bar) add a row to the one live display instead of
    opening a second one, which rich does not allow.
    """
    global _active
    if not progress_enabled():
        yield _Task(None, None)
        return
    if _active is not None:
        task_id = _active.add_task(description, total=total)
        try:
            yield _Task(_active, task_id)
        finally:
            _active.remove_task(task_id)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=err, transient=False) as bar:
        _active = bar
        try:
            yield _Task(bar, bar.add_task(description, total=total))
        finally:
            _active = None
