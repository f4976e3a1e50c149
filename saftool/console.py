"""stderr output: messages and progress bars. stdout is reserved for records."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

err = Console(stderr=True, highlight=False)

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


@contextmanager
def progress(description: str, total: float | None) -> Iterator[_Task]:
    """One rich progress bar on stderr with elapsed and remaining time."""
    if not progress_enabled():
        yield _Task(None, None)
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
        yield _Task(bar, bar.add_task(description, total=total))
