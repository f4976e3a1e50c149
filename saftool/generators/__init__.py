"""Harmful-prompt generator backends, looked up by name so `openai` loads only when chosen.

A backend turns a gen config into candidate prompts per (category, form) cell and, for the prompts
that `saftool.gen` selects, writes the refusal in every style. `saftool.gen` does the rest (quotas,
de-duplication, diversity selection, records), so a backend stays small:

    class Backend:
        name: str       # provenance generator name, e.g. "template" or "openai:gpt-4o-mini"
        version: str
        def __init__(self, config: GenConfig, store: Store): ...
        def candidates(self, cell: Cell, k: int, rng: random.Random) -> list[str]: ...
        def responses(self, chosen: list[Candidate]) -> list[dict[str, str]]: ...
"""

from __future__ import annotations

from dataclasses import dataclass

from saftool.registry import Registry

GENERATORS = Registry(
    "generator backend",
    {
        "template": "saftool.generators.template:TemplateGenerator",
        "openai": "saftool.generators.openai_backend:OpenAIGenerator",
    },
    requires={"openai": ("openai", None)},
)


@dataclass(frozen=True)
class Cell:
    """One quota cell: every category is asked for in both forms."""

    category: str
    form: str


@dataclass(frozen=True)
class Candidate:
    instruction: str
    category: str
    form: str
