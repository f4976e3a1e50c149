"""`mix`: base instructions plus N harmful prompts with refusals, shuffled into one training set.

    from saftool.mix import MixConfig, build_mix
    items, manifest = build_mix(MixConfig(name="harm700", n_harm=700), store)

Base examples come from an Alpaca JSON/JSONL file, `infer`'s response records (a model's own answers:
self-distillation, see `response_item`) or, by default, the built-in benign tasks. Harmful
examples are the first `n_harm` items of a gen file (gen orders its output so every prefix is
balanced by category and form, hence harm350 is a subset of harm700 from the same file), restyled to
`style` from each item's stored `responses`. A plain Alpaca file of refusals (instruction, input,
output; Safety-Tuned LLaMAs ships its 2,483 safety examples so) is read as harmful items with ids
`NAME-N` and `source` NAME, its file name. Held-out (`split: eval`) items are refused as input,
since training on them would leak the evaluation.
"""

from __future__ import annotations

import hashlib
import random
import re
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from saftool import __version__
from saftool.errors import InputError, UsageError
from saftool.hashing import config_hash, file_sha256
from saftool.io import STDIO, atomic_open, display_name, iter_json_objects, write_json
from saftool.records import STYLES, AlpacaExample, InputDigest, Item, Kind, MixManifest, Provenance, Response
from saftool.store import Store, check_name

BUILTIN_BASE = "builtin:benign"
COUNTED_FIELDS = ("source", "kind", "category", "style", "form")


class MixConfig(BaseModel):
    """Everything that decides a mix. `saftool mix`'s options are these fields
    (`saftool.stageconfig.config_options`), and the run plan renders one into mix's argv, in the order
    declared here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: str | None = Field(
        default=None,
        description="Alpaca JSON or JSONL file, or infer's response records; several joined by commas "
        "[default: built-in benign tasks].",
    )
    base_n: int = Field(default=3000, ge=0, description="Size of the built-in base set (without --base).")
    harm: str | None = Field(
        default=None,
        description="Gen file, a plain Alpaca file of refusals (instruction/input/output; source = its file name), "
        "or - for stdin [default: newest harmful train file in the store].",
    )
    n_harm: int = Field(default=700, ge=0, description="Harmful examples to add (0: base only, the plain Alpaca model).")
    style: str | None = Field(
        default=None, description="Restyle refusals: noreason, short or long [default: as generated]."
    )
    seed: int = Field(default=0, description="Shuffle seed (and seed of the built-in base set).")
    # never None once built: an unnamed mix is named by `default_name`
    name: str = Field(default=None, description="Mix name [default: alpaca, harmN or harmN-STYLE].")  # type: ignore[assignment]

    @model_validator(mode="before")
    @classmethod
    def _named(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("name") is None:
            n_harm = data.get("n_harm", cls.model_fields["n_harm"].default)
            data = {**data, "name": default_name(n_harm, data.get("style"))}
        return data


def default_name(n_harm: int, style: str | None) -> str:
    """The study's model names: alpaca, harm350, harm350-short, harm700-long, ..."""
    if n_harm == 0:
        return "alpaca"
    return f"harm{n_harm}" if style in (None, "noreason") else f"harm{n_harm}-{style}"


# where a sentence or a line ends (a list's "2." is no end): a cut answer is kept up to the last one
_SENTENCE_END = re.compile(r"(?<!\d)[.!?][\"')]?(?=\s|$)|\n")


def response_item(response: Response) -> Item | None:
    """A model's answer as a training example (instruction, input, the answer as output), or None.

    An answer that ran into `max_new_tokens` is cut back to its last complete sentence or line: trained
    on as it is, it would teach the model to stop mid-sentence. An answer with nothing left is dropped.
    """
    text = response.response.strip()
    if response.completion_tokens >= response.generation.max_new_tokens:
        ends = [m.end() for m in _SENTENCE_END.finditer(text)]
        text = text[: ends[-1]].strip() if ends else ""
    if not text:
        return None
    return Item(
        id=response.id,
        instruction=response.prompt,
        input=response.input,
        output=text,
        kind=response.kind,
        category=response.category,
        source=f"self:{response.model}",
    )


def read_items(src: str | Path, kind: Kind, source: str) -> Iterator[Item]:
    """Items from a saftool JSONL, `infer`'s response records or a plain Alpaca file
    (instruction/input/output rows), or these mixed.

    Rows with a `kind` are read as items (a row with `response` and `generation` as a response, whose
    answer becomes the output: `response_item`); a plain row becomes an item of `kind` with id `SOURCE-N`
    (N counts the file's records from 1: line numbers repeat in a one-line JSON array) and `source`.
    Held-out (eval) items and repeated ids are errors naming their line.
    """
    name = display_name(src)
    seen: set[str] = set()
    for number, (lineno, obj) in enumerate(iter_json_objects(src), start=1):
        try:
            if "response" in obj and "generation" in obj:
                from_response = response_item(Response.model_validate(obj))
                if from_response is None:
                    continue
                item = from_response
            elif "kind" in obj:
                item = Item.model_validate(obj)
            else:
                row = AlpacaExample.model_validate(obj)
                item = Item(
                    id=f"{source}-{number}",
                    instruction=row.instruction,
                    input=row.input or "",
                    output=row.output,
                    kind=kind,
                    source=source,
                )
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InputError(name, lineno, ".".join(map(str, first["loc"])) or None, first["msg"]) from None
        if item.split == "eval":
            raise InputError(
                name,
                lineno,
                "split",
                f"item {item.id} is held out (eval); training on it would leak the evaluation",
            )
        if item.id in seen:
            raise InputError(name, lineno, "id", f"duplicate value {item.id!r}")
        seen.add(item.id)
        yield item


def read_base(src: str | Path) -> Iterator[Item]:
    """Base items: plain Alpaca rows are benign, with ids `alpaca-N`."""
    return read_items(src, "benign", "alpaca")


def harm_source(src: str | Path) -> str:
    """`source` of the plain rows of a harmful file: its name without suffixes (`stdin` for '-')."""
    if str(src) == STDIO:
        return "stdin"
    return Path(src).name.split(".")[0] or "harm"


class _Digest:
    """Hash of records as read, for inputs that are not files (stdin, the built-in set)."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.records = 0

    def tap(self, items) -> Iterator[Item]:
        for item in items:
            self.sha.update(item.model_dump_json().encode() + b"\n")
            self.records += 1
            yield item


def _digest(src: str, tap: _Digest) -> InputDigest:
    if src == STDIO or src == BUILTIN_BASE:
        return InputDigest(path=display_name(src), sha256=tap.sha.hexdigest(), records=tap.records)
    return InputDigest(path=str(src), sha256=file_sha256(src), records=tap.records)


def _harmful(src: str, n: int, style: str | None, tap: _Digest) -> list[Item]:
    """The first n harmful items of `src` (a gen file, or plain Alpaca rows of refusals), restyled;
    an error says how many exist if too few.

    The whole input is read (and tapped for its digest) so the count of what exists is exact.
    """
    name = display_name(src)
    chosen: list[Item] = []
    available = 0
    for item in tap.tap(read_items(src, "harmful", harm_source(src))):
        if item.kind != "harmful":
            continue
        available += 1
        if len(chosen) < n:
            chosen.append(_restyle(item, style, name))
    if available < n:
        raise UsageError(f"asked for {n} harmful examples but {name} holds only {available}")
    return chosen


def _restyle(item: Item, style: str | None, name: str) -> Item:
    if style is None or style == item.style:
        return item.model_copy(update={"responses": None})
    text = (item.responses or {}).get(style)
    if not text:
        raise InputError(
            name,
            None,
            "responses",
            f"item {item.id} has no {style!r} refusal; regenerate it with saftool gen",
        )
    return item.model_copy(update={"output": text, "style": style, "responses": None})


def build_mix(config: MixConfig, store: Store | None = None) -> tuple[list[Item], MixManifest]:
    """The shuffled mix and its manifest (whose `path` and `sha256` the writer fills in)."""
    store = store or Store()
    check_name(config.name, "mix name")
    if config.style is not None and config.style not in STYLES:
        raise UsageError(f"unknown style {config.style!r}; choose one of: {', '.join(STYLES)}")

    harm: list[Item] = []
    inputs: list[InputDigest] = []
    # each input's items under its name: an id two of them share names both
    read: list[tuple[str, list[Item]]] = []
    if config.n_harm:
        harm_src = config.harm or _newest_harm(store)
        tap = _Digest()
        harm = _harmful(harm_src, config.n_harm, config.style, tap)
        inputs.append(_digest(harm_src, tap))
        read.append((display_name(harm_src), harm))

    base: list[Item] = []
    base_inputs: list[InputDigest] = []
    if config.base:
        # several files: a self-distilled base is the answers to the instructions plus the answers
        # to the looks-unsafe look-alikes, written by two infer runs
        for src in config.base.split(","):
            tap = _Digest()
            read.append((display_name(src), list(tap.tap(read_base(src)))))
            base += read[-1][1]
            base_inputs.append(_digest(src, tap))
    else:
        from saftool.benign import benign_items

        tap = _Digest()
        base = list(tap.tap(benign_items(config.base_n, split="train", seed=config.seed)))
        base_inputs.append(_digest(BUILTIN_BASE, tap))
        read.append((BUILTIN_BASE, base))
    inputs[:0] = base_inputs

    seen: dict[str, str] = {}
    for src, group in read:
        for item in group:
            if item.id in seen:  # each input's own ids are unique (read_items checks), so two inputs share it
                raise UsageError(f"id {item.id!r} appears in two inputs: {seen[item.id]} and {src}")
            seen[item.id] = src
    items = base + harm
    random.Random(config.seed).shuffle(items)

    styles = {item.style for item in harm}
    counts = {
        field: dict(sorted(Counter(str(getattr(i, field) or "none") for i in items).items()))
        for field in COUNTED_FIELDS
    }
    manifest = MixManifest(
        name=config.name,
        path="",
        n_total=len(items),
        n_harmful=len(harm),
        n_benign=len(items) - len(harm),
        style=styles.pop() if len(styles) == 1 else None,
        seed=config.seed,
        counts=counts,
        inputs=inputs,
        sha256="",
        provenance=Provenance(
            generator="mix",
            version=__version__,
            seed=config.seed,
            # inputs by content, not by path: the same mix made in another folder has the same hash
            config_hash=config_hash(
                {**config.model_dump(exclude={"base", "harm"}), "inputs": [d.sha256 for d in inputs]}
            ),
        ),
    )
    return items, manifest


def _newest_harm(store: Store) -> str:
    path = store.newest_prompts("harmful", "train")
    if path is None:
        raise UsageError(
            f"no harmful prompts in {store.prompts}; make some with `saftool gen --n 700` or pass --harm FILE"
        )
    return str(path)


def manifest_path_for(output: Path) -> Path:
    """NAME.jsonl -> NAME.manifest.json, beside the mix file."""
    stem = output.name[: -len(".jsonl")] if output.name.endswith(".jsonl") else output.name
    return output.with_name(f"{stem}.manifest.json")


def write_mix(items: list[Item], manifest: MixManifest, dst: str | Path) -> MixManifest:
    """Write the mix (atomically, or to stdout for '-') and, for a file, its manifest beside it.

    Returns the manifest with `path` and `sha256` filled in.
    """
    digest = hashlib.sha256()
    if str(dst) == STDIO:
        out = sys.stdout
        for item in items:
            line = item.model_dump_json() + "\n"
            digest.update(line.encode())
            out.write(line)
        out.flush()
        return manifest.model_copy(update={"path": STDIO, "sha256": digest.hexdigest()})
    with atomic_open(dst) as fh:
        for item in items:
            line = item.model_dump_json() + "\n"
            digest.update(line.encode())
            fh.write(line)
    done = manifest.model_copy(update={"path": str(dst), "sha256": digest.hexdigest()})
    write_json(done, manifest_path_for(Path(dst)))
    return done
