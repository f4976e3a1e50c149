"""The `openai` backend: any OpenAI-compatible chat endpoint writes the prompts and the reasons.

Requests go through `saftool.openai_chat.ChatClient` (cached under store/cache/gen, concurrent,
retried), so a rerun with the same config makes no requests. The model is asked for prompts per
(category, form) using the project's taxonomy descriptions, then for a short and a long reason per
selected prompt; `output` always starts with the configured template refusal so every style is
recognisably a refusal.

Train/eval split: a model cannot be told to avoid another run's prompts, so every proposed prompt is
assigned to a split by the hash of its text (a fifth go to eval). A prompt therefore belongs to
exactly one split, whichever run proposed it.
"""

from __future__ import annotations

import hashlib
import math
import random
import re

from saftool import __version__, console
from saftool.generators import Candidate, Cell
from saftool.generators.taxonomy import CATEGORIES
from saftool.openai_chat import ChatClient, ChatRequest

REVISION = "1"
DEFAULT_MODEL = "gpt-4o-mini"
PER_REQUEST = 20  # prompts asked for in one request
EVAL_SHARE = 0.2
_LIST_MARKER = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)]|\(\d+\))\s*")

SYSTEM = (
    "You help build a dataset that teaches AI assistants to refuse harmful requests. "
    "Follow the format exactly and add no commentary."
)
FORM_WORDS = {
    "question": "questions (each ending with a question mark)",
    "statement": "imperative or declarative requests (not questions, no question mark)",
}
REASON_LENGTH = {"short": "one or two sentences", "long": "three to five sentences"}


def split_of(text: str) -> str:
    return (
        "eval"
        if hashlib.sha256(" ".join(text.split()).casefold().encode()).digest()[0] < 256 * EVAL_SHARE
        else "train"
    )


class OpenAIGenerator:
    def __init__(self, config, store):
        model = config.backend.split(":", 1)[1] if ":" in config.backend else config.model or DEFAULT_MODEL
        self.name = f"openai:{model}"
        self.version = f"{__version__}+openai.{REVISION}"
        self.split = config.split
        self.seed = config.seed
        self.refusal = config.refusal
        self.client = ChatClient(
            model, cache_dir=store.cache / "gen", namespace="gen", concurrency=config.concurrency
        )
        self._by_name = {c.name: c for c in CATEGORIES}

    def categories(self) -> list[str]:
        return list(self._by_name)

    def candidates(self, cell: Cell, k: int, rng: random.Random) -> list[str]:
        """At least k prompts of this cell and split, unless the model keeps repeating itself."""
        share = EVAL_SHARE if self.split == "eval" else 1 - EVAL_SHARE
        # Ask for a margin over k/share: duplicates and wrong-form lines are dropped below.
        batches = math.ceil(1.25 * k / share / PER_REQUEST)
        category = self._by_name[cell.category]
        requests = [
            ChatRequest.of(
                ("system", SYSTEM),
                (
                    "user",
                    f"Write {PER_REQUEST} different {FORM_WORDS[cell.form]} that a user might send to an AI "
                    f"assistant asking for help with {category.description}. Vary the specific topic, the "
                    f"wording and the length. One per line, no numbering. (seed {self.seed}, batch {b})",
                ),
                temperature=1.0,
            )
            for b in range(batches)
        ]
        texts: dict[str, None] = {}
        for _, result in sorted(self.client.complete_many(requests), key=lambda pair: pair[0]):
            for line in result.text.splitlines():
                text = _LIST_MARKER.sub("", line).strip().strip('"').strip()
                if text and text.endswith("?") == (cell.form == "question") and split_of(text) == self.split:
                    texts.setdefault(text)
        found = list(texts)
        rng.shuffle(found)
        return found[:k]

    def responses(self, chosen: list[Candidate]) -> list[dict[str, str]]:
        requests = []
        for candidate in chosen:
            description = self._by_name[candidate.category].description
            for style in ("short", "long"):
                requests.append(
                    ChatRequest.of(
                        ("system", SYSTEM),
                        (
                            "user",
                            f'An AI assistant refuses this request, which concerns {description}:\n"'
                            f'{candidate.instruction}"\nWrite only the reason for refusing, in '
                            f"{REASON_LENGTH[style]}, addressed to the user. No greeting, no apology.",
                        ),
                        max_tokens=80 if style == "short" else 220,
                    )
                )
        reasons = [""] * len(requests)
        for index, result in self.client.complete_many(requests):
            reasons[index] = " ".join(result.text.split())
        stats = self.client.stats
        console.info(
            f"{self.name}: {stats.requests} requests ({stats.retries} retries), {stats.cache_hits} cached, "
            f"{stats.prompt_tokens} prompt + {stats.completion_tokens} completion tokens"
        )
        return [
            {
                "noreason": self.refusal,
                "short": f"{self.refusal} {reasons[2 * i]}",
                "long": f"{self.refusal} {reasons[2 * i + 1]}",
            }
            for i in range(len(chosen))
        ]
