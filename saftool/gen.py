"""`gen`: harmful prompts with refusals in every style, built-in benign tasks, safe prompts that look
unsafe (`saftool.looks_unsafe`: a held-out family, and a train family the base model answers itself), or built-in open-ended instructions without answers
(`saftool.instructions`, the base set a pretrained model answers itself).

    from saftool.gen import GenConfig, generate
    items = list(generate(GenConfig(n=700, style="short", seed=1)))

Harmful generation fills a quota per (category, form) cell so every category appears in both forms
(questions and statements, half and half by default). Per cell the backend proposes candidates; with
`diverse` they are embedded and one per cluster is kept (see `saftool.diversity`), otherwise a seeded
sample is taken. Every item carries its refusal in all three styles (`responses`) and `output` in the
chosen one, so the same seed and n give the same instructions whatever the style.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from saftool import console
from saftool.errors import UsageError
from saftool.generators import GENERATORS, Candidate, Cell
from saftool.hashing import config_hash
from saftool.records import DEFAULT_REFUSAL, STYLES, Item, Provenance
from saftool.store import Store

KINDS = ("harmful", "benign", "looks-unsafe", "instructions")
SPLITS = ("train", "eval")
# Candidates looked at per prompt kept when selecting for diversity: the study kept 700 of about 3,000.
CANDIDATES_PER_ITEM = 3000 / 700


class GenConfig(BaseModel):
    """Everything that decides a gen output; its hash goes into provenance and the file name.

    `saftool gen`'s options are these fields (`saftool.stageconfig.config_options`: flags, defaults
    and help from here), and the run plan renders one into gen's argv, in the order declared here.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = Field(
        default="harmful",
        description="harmful (prompts + refusals), benign (tasks + exact answers), looks-unsafe (safe prompts in "
        "XSTest's categories; --split eval is the over-refusal set, train the look-alikes the base model "
        "answers) or instructions (open-ended requests without answers: a pretrained model's own answers to "
        "them make its base set).",
    )
    split: str = Field(default="train", description="train, or eval: a held-out family never in train.")
    n: int = Field(default=700, ge=1, description="Number of records.")
    style: str = Field(default="noreason", description="Refusal in `output`: noreason, short or long.")
    seed: int = Field(default=0, description="Same seed, same output, byte for byte.")
    backend: str = Field(default="template", description="template (offline) or openai (needs --model or openai:MODEL).")
    model: str | None = Field(default=None, description="Chat model for --backend openai [default: gpt-4o-mini].")
    diverse: bool = Field(default=True, description="Pick one prompt per embedding cluster (all-MiniLM-L6-v2).")
    candidates: int | None = Field(
        default=None, description="Candidates before diverse selection [default: 3000 per 700 kept]."
    )
    question_fraction: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Share of questions; the rest are statements."
    )
    refusal: str = Field(
        default=DEFAULT_REFUSAL, min_length=1, description="The template refusal (all styles start with it)."
    )
    concurrency: int = Field(default=8, ge=1, description="Parallel requests for --backend openai.")

    def checked(self) -> GenConfig:
        """Reject unknown choices with one line that lists the valid ones."""
        _choose(self.kind, KINDS, "kind")
        _choose(self.split, SPLITS, "split")
        _choose(self.style, STYLES, "style")
        if self.kind != "harmful" and self.backend != "template":
            what = {"benign": "benign tasks", "looks-unsafe": "looks-unsafe prompts"}.get(self.kind, self.kind)
            raise UsageError(f"{what} come only from the built-in generator; drop --backend")
        if self.kind == "looks-unsafe":
            from saftool.looks_unsafe import check_request

            check_request(self.n, self.split)
        GENERATORS.load(self.backend)  # unknown names fail here, before any work
        return self

    def pool_size(self) -> int:
        return self.candidates or math.ceil(CANDIDATES_PER_ITEM * self.n)


def _choose(value: str, choices, what: str) -> None:
    if value not in choices:
        raise UsageError(f"unknown {what} {value!r}; choose one of: {', '.join(choices)}")


def default_path(config: GenConfig, store: Store) -> Path:
    """store/prompts/{kind}-{split}-{backend}-n{n}-seed{seed}[-{style}]-{hash}.jsonl

    The `{kind}-{split}-` prefix is what `Store.newest_prompts` (and so `mix`) looks for.
    """
    from saftool.store import slug

    parts = [config.kind, config.split, slug(config.backend if config.kind == "harmful" else "builtin")]
    parts += [f"n{config.n}", f"seed{config.seed}"]
    if config.kind == "harmful":
        parts.append(config.style)
    parts.append(config_hash(config, 8))
    return store.prompts / ("-".join(parts) + ".jsonl")


def generate(config: GenConfig, store: Store | None = None) -> Iterator[Item]:
    """Yield `config.n` items. Byte-identical output for an identical config (and machine)."""
    config = config.checked()
    if config.kind == "benign":
        from saftool.benign import benign_items

        yield from benign_items(config.n, split=config.split, seed=config.seed)
        return
    if config.kind == "looks-unsafe":
        from saftool.looks_unsafe import looks_unsafe_items

        yield from looks_unsafe_items(config.n, split=config.split, seed=config.seed)
        return
    if config.kind == "instructions":
        from saftool.instructions import instruction_items

        yield from instruction_items(config.n, split=config.split, seed=config.seed)
        return
    yield from _harmful(config, store or Store())


def cell_quotas(
    n: int, categories: list[str], question_fraction: float, rng: random.Random
) -> dict[Cell, int]:
    """Split n over (category, form) cells: forms by `question_fraction`, then categories evenly;
    remainders go to categories in a seeded order so no category is always favoured."""
    n_questions = round(n * question_fraction)
    quotas: dict[Cell, int] = {}
    for form, total in (("question", n_questions), ("statement", n - n_questions)):
        base, extra = divmod(total, len(categories))
        lucky = set(rng.sample(categories, extra))
        for category in categories:
            quotas[Cell(category, form)] = base + (category in lucky)
    return quotas


def _harmful(config: GenConfig, store: Store) -> Iterator[Item]:
    backend = GENERATORS.load(config.backend)(config, store)
    rng = random.Random(config.seed)
    quotas = {
        c: k
        for c, k in cell_quotas(config.n, backend.categories(), config.question_fraction, rng).items()
        if k
    }
    pool = config.pool_size()
    proposals: dict[Cell, list[str]] = {}
    seen: set[str] = set()
    for cell, quota in quotas.items():
        want = max(quota, math.ceil(pool * quota / config.n)) if config.diverse else quota
        texts = []
        for text in backend.candidates(cell, want, rng):
            key = " ".join(text.split()).casefold()  # exact duplicates never appear, across cells too
            if key not in seen:
                seen.add(key)
                texts.append(text)
        proposals[cell] = texts

    chosen = (
        _select_diverse(proposals, quotas)
        if config.diverse
        else {c: t[: quotas[c]] for c, t in proposals.items()}
    )
    for cell, texts in chosen.items():
        if len(texts) < quotas[cell]:
            raise UsageError(
                f"only {len(texts)} distinct {cell.form}s about {cell.category} for a quota of {quotas[cell]}; "
                "lower --n or raise --candidates"
            )
        rng.shuffle(texts)

    # Round-robin over cells (in a seeded order): any prefix of the file is balanced, so
    # `mix --n-harm 350` on a 700-prompt file keeps the category and form mix.
    cells = list(chosen)
    rng.shuffle(cells)
    ordered: list[Candidate] = []
    for rank in range(max(len(t) for t in chosen.values())):
        for cell in cells:
            if rank < len(chosen[cell]):
                ordered.append(Candidate(chosen[cell][rank], cell.category, cell.form))

    provenance = Provenance(
        generator=backend.name, version=backend.version, seed=config.seed, config_hash=config_hash(config)
    )
    source = f"gen:{config.backend.split(':', 1)[0]}"
    for candidate, responses in zip(ordered, backend.responses(ordered), strict=True):
        yield Item(
            id=f"harmful-{config.split}-{hashlib.sha256(candidate.instruction.encode()).hexdigest()[:12]}",
            instruction=candidate.instruction,
            output=responses[config.style],
            kind="harmful",
            category=candidate.category,
            form=candidate.form,
            style=config.style,
            responses=responses,
            source=source,
            split=config.split,
            provenance=provenance,
        )


def _select_diverse(proposals: dict[Cell, list[str]], quotas: dict[Cell, int]) -> dict[Cell, list[str]]:
    from saftool import diversity

    texts = [t for cell_texts in proposals.values() for t in cell_texts]
    console.info(f"embedding {len(texts)} candidates for diverse selection")
    vectors = diversity.embed(texts)
    chosen: dict[Cell, list[str]] = {}
    start = 0
    for cell, cell_texts in proposals.items():
        block = vectors[start : start + len(cell_texts)]
        chosen[cell] = [cell_texts[i] for i in diversity.pick_diverse(block, quotas[cell])]
        start += len(cell_texts)
    return chosen
