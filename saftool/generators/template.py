"""The offline `template` backend: the project's harm taxonomy put through phrasing templates.

Per (category, form) a prompt is opener + template(act + ending); with 11 categories, 12 acts,
4 endings, 4 openers and 8 train (4 eval) templates per form there are 33,792 distinct train
prompts and 16,896 eval prompts. Eval prompts use their own template family, so no eval prompt is ever
produced for the train split.
"""

from __future__ import annotations

import hashlib
import random

from saftool import __version__
from saftool.errors import UsageError
from saftool.generators import Candidate, Cell
from saftool.generators.taxonomy import CATEGORIES, OPENERS, TEMPLATES, Category

# Bump when the taxonomy or templates change: the same seed then gives different prompts.
REVISION = "1"


class TemplateGenerator:
    name = "template"
    version = f"{__version__}+template.{REVISION}"

    def __init__(self, config, store):
        self.split = config.split
        self.refusal = config.refusal
        self._by_name = {c.name: c for c in CATEGORIES}

    def categories(self) -> list[str]:
        return list(self._by_name)

    def capacity(self, cell: Cell) -> int:
        category = self._by_name[cell.category]
        templates = TEMPLATES[self.split][cell.form]
        return len(category.acts) * len(category.endings) * len(OPENERS) * len(templates)

    def candidates(self, cell: Cell, k: int, rng: random.Random) -> list[str]:
        """k distinct prompts of this cell, drawn without replacement from every combination."""
        total = self.capacity(cell)
        if k > total:
            raise UsageError(
                f"the template taxonomy has only {total} {self.split} {cell.form}s about {cell.category}; "
                "lower --n or --candidates"
            )
        category = self._by_name[cell.category]
        templates = TEMPLATES[self.split][cell.form]
        return [self._compose(category, templates, index) for index in rng.sample(range(total), k)]

    @staticmethod
    def _compose(category: Category, templates: tuple[str, ...], index: int) -> str:
        # Decode a mixed-radix index so only the sampled prompts are ever built.
        index, act = divmod(index, len(category.acts))
        index, ending = divmod(index, len(category.endings))
        index, opener = divmod(index, len(OPENERS))
        template = templates[index]
        return OPENERS[opener] + template.format(act=category.acts[act] + category.endings[ending])

    def responses(self, chosen: list[Candidate]) -> list[dict[str, str]]:
        out = []
        for candidate in chosen:
            category = self._by_name[candidate.category]
            # The prompt's own hash picks among the category's reasons: stable across runs and styles.
            pick = hashlib.sha256(candidate.instruction.encode()).digest()[0]
            out.append(
                {
                    "noreason": self.refusal,
                    "short": f"{self.refusal} {category.short_reasons[pick % len(category.short_reasons)]}",
                    "long": f"{self.refusal} {category.long_reasons[pick % len(category.long_reasons)]}",
                }
            )
        return out
