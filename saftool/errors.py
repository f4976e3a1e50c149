"""Typed user-facing errors.

Library code raises these; only the CLI boundary turns them into one line on stderr and an exit
code, so callers of the library get ordinary exceptions and the CLI never shows a traceback for a
user mistake.
"""

from __future__ import annotations


class SaftoolError(Exception):
    """A problem the user can fix. Printed as one line; exit code 1."""

    exit_code = 1


class UsageError(SaftoolError):
    """A bad option value or an unknown name (style, backend, mix, model...). Exit code 2."""

    exit_code = 2


class InputError(SaftoolError):
    """A bad input record, reported as FILE:LINE: FIELD: message. Exit code 2."""

    exit_code = 2

    def __init__(self, path: str, line: int | None, field: str | None, message: str):
        self.path = path
        self.line = line
        self.field = field
        self.message = message
        where = path if line is None else f"{path}:{line}"
        text = f"{where}: {field}: {message}" if field else f"{where}: {message}"
        super().__init__(text)


class MissingDependencyError(SaftoolError):
    """An optional package is needed; the message carries the pip line that installs it."""

    def __init__(self, package: str, purpose: str, extra: str | None = None):
        hint = f"pip install 'saftool[{extra}]'" if extra else f"pip install {package}"
        super().__init__(f"{purpose} needs the '{package}' package: {hint}")
