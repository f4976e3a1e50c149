"""Lazy registries of backends, looked up by name, and the options each backend declares.

Entries are "module:attribute" strings, so choosing a backend imports only that backend and its
heavy dependencies (torch, transformers, openai) stay unloaded until used.

Each backend class declares the options it takes as `Options`, an `EngineOptions` model beside it
(as an `llm` model plugin declares its own `Options`). `Registry.build` validates what a caller
gives against that model before it builds anything, so an option the backend does not take, or a
misspelt one, is an error that names the backend and the option instead of being dropped.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from saftool.errors import MissingDependencyError, UsageError
from saftool.stageconfig import flag


class EngineOptions(BaseModel):
    """The options one backend takes: a field each, nothing else (`extra="forbid"`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def for_spec(cls, spec: str) -> type[EngineOptions]:
        """The model that checks the options of the engine named `spec`: this one, unless the engine
        is built from others (a cascade takes its two judges' options too)."""
        return cls


@dataclass
class Registry:
    what: str
    entries: dict[str, str]
    # optional package needed by an entry -> the saftool extra that installs it (None: plain pip)
    requires: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    noun: str = ""  # what one entry is called in messages about its options [default: `what`]

    def names(self) -> list[str]:
        return list(self.entries)

    def key(self, name: str) -> str:
        """The entry `name` looks up: 'prefix:argument' names look up 'prefix'."""
        key = name.split(":", 1)[0] if name not in self.entries else name
        if key not in self.entries:
            raise UsageError(f"unknown {self.what} {name!r}; choose one of: {', '.join(self.entries)}")
        return key

    def load(self, name: str) -> Any:
        """The object registered under `name`, its optional package checked."""
        key = self.key(name)
        if key in self.requires:
            package, extra = self.requires[key]
            if importlib.util.find_spec(package) is None:
                raise MissingDependencyError(package, f"the {key!r} {self.what}", extra)
        return self.load_class(key)

    def load_class(self, name: str) -> Any:
        """The object registered under `name`, its optional package not checked: enough to read the
        options it declares, since its module imports that package only where it is used."""
        module_name, attr = self.entries[self.key(name)].split(":")
        return getattr(importlib.import_module(module_name), attr)

    def options_model(self, name: str) -> type[EngineOptions]:
        """The model that checks the options of the engine `name` (a cascade's holds its judges')."""
        return self.load_class(name).Options.for_spec(name)

    def option_names(self) -> set[str]:
        """Every option some entry takes: what a command line may pass on to its chosen engine."""
        return {option for key in self.entries for option in self.load_class(key).Options.model_fields}

    def options(
        self, name: str, given: Mapping[str, Any], flags: Mapping[str, str] | None = None
    ) -> EngineOptions:
        """`given` checked against the options model of the engine `name`.

        `flags` says how the caller spelled each option (a command line's flag); an option missing
        from it is named by its field's flag (`stageconfig.flag`), an unknown one as `--its-name`.
        Checking needs only the engine's module, which imports no heavy library at its top, and not
        its optional package.
        """
        key = self.key(name)
        model = self.options_model(name)
        flags = flags or {}

        def spelled(option: str, owner: type[EngineOptions] = model) -> str:
            if option in flags:
                return flags[option]
            return flag(owner, option) if option in owner.model_fields else "--" + option.replace("_", "-")

        noun = self.noun or self.what
        for option in given:
            if option not in model.model_fields:
                takers = {
                    other: self.load_class(other).Options
                    for other in self.entries
                    if other != key and option in self.load_class(other).Options.model_fields
                }
                if takers:
                    raise UsageError(
                        f"{spelled(option, next(iter(takers.values())))} is an option of the "
                        f"{' and '.join(takers)} {noun}{'s' if len(takers) > 1 else ''}; "
                        f"the {key} {noun} does not take it"
                    )
                takes = ", ".join(spelled(name) for name in model.model_fields) or "no options"
                raise UsageError(f"the {key} {noun} does not take {spelled(option)} (it takes {takes})")
        try:
            return model(**given)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = spelled(str(error["loc"][0])) if error["loc"] else name
            raise UsageError(f"{where}: {error['msg']} (the {key} {noun})") from None

    def build(
        self,
        name: str,
        target: str,
        options: Mapping[str, Any] | None = None,
        *,
        flags: Mapping[str, str] | None = None,
        **context: Any,
    ) -> Any:
        """The engine `name` built on `target` (a runtime's model, a judge's spec) with `options`
        checked first; `context` is what the caller's surroundings give every engine (the store)."""
        checked = self.options(name, options or {}, flags)
        return self.load(name)(target, checked, **context)
