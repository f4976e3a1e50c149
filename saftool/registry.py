"""Lazy registries of backends, looked up by name.

Entries are "module:attribute" strings, so choosing a backend imports only that backend and its
heavy dependencies (torch, transformers, openai) stay unloaded until used.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any

from saftool.errors import MissingDependencyError, UsageError


@dataclass
class Registry:
    what: str
    entries: dict[str, str]
    # optional package needed by an entry -> the saftool extra that installs it (None: plain pip)
    requires: dict[str, tuple[str, str | None]] = field(default_factory=dict)

    def names(self) -> list[str]:
        return list(self.entries)

    def load(self, name: str) -> Any:
        """The object registered under `name`. 'prefix:argument' names look up 'prefix'."""
        key = name.split(":", 1)[0] if name not in self.entries else name
        if key not in self.entries:
            raise UsageError(f"unknown {self.what} {name!r}; choose one of: {', '.join(self.entries)}")
        if key in self.requires:
            package, extra = self.requires[key]
            if importlib.util.find_spec(package) is None:
                raise MissingDependencyError(package, f"the {key!r} {self.what}", extra)
        module_name, attr = self.entries[key].split(":")
        return getattr(importlib.import_module(module_name), attr)
