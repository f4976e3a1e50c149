"""Public data sets: a registry, and `pull` to bring one into the store as Item records.

Each `Dataset` names its upstream file (a raw GitHub URL), licence, expected sha256, file format and
how its columns map onto `Item`. `pull` downloads it (or imports a local copy with `source=PATH`),
checks the checksum, normalises it and writes it atomically:

    store/evals/NAME.jsonl          evaluation sets (split 'eval')
    store/prompts/NAME.jsonl        training sets (split 'train'): `alpaca`, `safety-tuned-llamas-train`
    .../NAME.source.json            sidecar: where it came from, its sha256, rows, licence

Training sets land in prompts/ because they are Item JSONL with `instruction`, `input` and `output`
at top level, so `saftool mix --base store/prompts/alpaca.jsonl` reads them as an Alpaca file.
Ids are stable: NAME-00001, NAME-00002, ... in upstream row order.

Checksums: every expected sha256 below, except alpaca's, is that of the copy in the project's
`shared/data/`, which are byte copies of the upstream files; the assumption is that upstream has not
changed since. Alpaca's checksum is not known offline, so `pull` records the sha256 it saw (trust on
first use) and warns if a later `--force` pull sees different bytes.

Checksum policy: a download (the registry URL or `--from URL`) whose sha256 differs is rejected and
nothing is written. A local file (`--from PATH`) that differs only gets a warning, since the user
vouches for it (a re-saved CSV, a newer upstream revision); the sidecar records `checksum: mismatch`
and the sha256 actually imported.
"""

from __future__ import annotations

import csv
import json
import tempfile
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from saftool import __version__, console
from saftool.errors import InputError, SaftoolError, UsageError
from saftool.hashing import file_sha256
from saftool.io import iter_json_objects, read_json, write_json, write_records
from saftool.records import Item, Kind, Split
from saftool.store import Store

Format = Literal["csv", "records", "instructions"]
"""csv: a header row; records: a JSON array or JSONL of objects; instructions: {"instructions": [...]}"""

_GH = "https://raw.githubusercontent.com"
# HEAD is GitHub's default branch; the sha256 pins the content, so a changed upstream is caught.
_STUDY = f"{_GH}/bablooven/LLM-Safety-and-Alignment-via-Instruction-Tuning/HEAD/Test%20Datasets"
_STL = f"{_GH}/vinid/safety-tuned-llamas/HEAD/data"
# vinid/safety-tuned-llamas states no licence for its data; cite Bianchi et al., ICLR 2024.
_STL_LICENCE = "unstated"


@dataclass(frozen=True)
class Dataset:
    """One public set and how its columns become Item records."""

    name: str
    description: str
    url: str
    licence: str
    sha256: str | None
    """Expected sha256 of the upstream file; None where it cannot be known offline (trust on first use)."""
    rows: int
    format: Format
    split: Split
    kind: Kind | None
    """The kind of every row; None when `label` decides it per row."""
    instruction: str = "instruction"
    input: str | None = None
    output: str | None = None
    category: str | None = None
    label: str | None = None
    labels: dict[str, Kind] = field(default_factory=dict)
    """Values of the `label` column -> kind."""

    @property
    def kind_text(self) -> str:
        """The kind, or 'mixed' when a label column decides it per row."""
        return self.kind or "mixed"


def _stl(name: str, kind: Kind, rows: int, sha256: str, what: str, category: str | None = None) -> Dataset:
    return Dataset(
        name=name,
        description=f"Safety-Tuned LLaMAs evaluation set: {what}",
        url=f"{_STL}/evaluation/{name}.json",
        licence=_STL_LICENCE,
        sha256=sha256,
        rows=rows,
        format="instructions",
        split="eval",
        kind=kind,
        instruction="instructions",
        input="inputs",
        category=category,
    )


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            name="alpaca",
            description="Stanford Alpaca instruction data (52,002 examples): the benign training base",
            url=f"{_GH}/tatsu-lab/stanford_alpaca/HEAD/alpaca_data.json",
            licence="CC-BY-NC-4.0",
            sha256=None,
            rows=52002,
            format="records",
            split="train",
            kind="benign",
            input="input",
            output="output",
        ),
        Dataset(
            name="advbench",
            description="AdvBench harmful behaviours (llm-attacks) as used by the study; output is the template refusal",
            url=f"{_STUDY}/llm_attacks.csv",
            licence="MIT",
            sha256="dd3360753ae27902e9097a0037fdc570a0b9601c419f98b8a56ae537cdb809d0",
            rows=388,
            format="csv",
            split="eval",
            kind="harmful",
            input="input",
            output="output",
        ),
        Dataset(
            name="do-not-answer",
            description="Do-Not-Answer prompts (English) as used by the study",
            url=f"{_STUDY}/do_not_answer_en.csv",
            licence="MIT (orig. Apache-2.0)",
            sha256="6e323555dc2231c56f140042ddb5e804532d0b836797192d9eb67247eb6309ba",
            rows=939,
            format="csv",
            split="eval",
            kind="harmful",
        ),
        Dataset(
            name="beavertails-eval",
            description="BeaverTails evaluation prompts, 14 harm categories x 50, as used by the study",
            url=f"{_STUDY}/beaver_prompt.csv",
            licence="MIT (orig. CC-BY-NC-4.0)",
            sha256="8524ce1d0f6e75803bc95d1cdc6d5ee5f74d36faf6762aa1d0895b0ff1ea6475",
            rows=700,
            format="csv",
            split="eval",
            kind="harmful",
            category="category",
        ),
        Dataset(
            name="seed-safe",
            description="The study's safe prompts (Koala, Vicuna, WizardLM, Self-Instruct tests) for conservativeness",
            url=f"{_STUDY}/all_datasets_koala_vicuna_wizard_sinstruct_shuffled.csv",
            licence="MIT",
            sha256="33727ae9ab72a4c14abe92d5a8bac56c5dc9575b87c1a3c55103b031971fc9e1",
            rows=728,
            format="csv",
            split="eval",
            kind="benign",
            input="input",
        ),
        Dataset(
            name="xstest",
            description="XSTest exaggerated-safety prompts: 250 safe (benign), 200 unsafe contrasts (harmful); type as category",
            url=f"{_GH}/paul-rottger/exaggerated-safety/HEAD/xstest_prompts.csv",
            licence="CC-BY-4.0",
            sha256="11783fb294ed017473ee53c207d71f2161c7672c8d0b037501e78387f801cb5a",
            rows=450,
            format="csv",
            split="eval",
            kind=None,
            instruction="prompt",
            category="type",
            label="label",
            labels={"safe": "benign", "unsafe": "harmful"},
        ),
        _stl(
            "I-MaliciousInstructions",
            "harmful",
            100,
            "7a2bc751d49983800848050282aa2a84b3faa7044c3178228c49dd68df7d679f",
            "malicious instructions (crime, hate; tag as category)",
            category="tags",
        ),
        _stl(
            "I-CoNa",
            "harmful",
            178,
            "e07d92e376198e60ac1004902dc3fec46513ac70b08d855b4101288b8270d62a",
            "hateful statements from CoNa, phrased as instructions",
        ),
        _stl(
            "I-Controversial",
            "harmful",
            40,
            "0590fc6ee97a39c6a43adc21fe5a4ccbf546ea52e89a32757db6ea3d46ce65c4",
            "instructions to argue for discriminatory or controversial claims",
        ),
        _stl(
            "I-PhysicalSafetyUnsafe",
            "harmful",
            100,
            "16324a2f1ded933e8c7a9f6c7d3924130f76260d03f9df2205e0a25c02de8aae",
            "instructions to justify physically unsafe advice",
        ),
        _stl(
            "I-PhysicalSafetySafe",
            "benign",
            100,
            "34c874532623e405fb574f0fa8d6b86cbecce0e3340f67b146a6a6bc2453bed6",
            "the safe counterparts of I-PhysicalSafetyUnsafe",
        ),
        _stl(
            "I-Alpaca",
            "benign",
            50,
            "30db84ee303df15b653566437ccf1a2fc837caac99a570915d720f65f041fe6d",
            "ordinary Alpaca instructions (helpfulness and over-refusal check)",
        ),
        # The paper counts Q-Harm among its harmful sets (questions from Anthropic's HH red-teaming
        # data) and so do we, but some of its questions are innocuous ("How do I unclog a toilet?",
        # "What is global warming?"): a refusal-only judge cannot score 100% on it without over-refusal.
        _stl(
            "Q-Harm",
            "harmful",
            100,
            "ecc1d19030d41ad550a1e69996dc424074e3e45fb2fa5e8e44b46f294aea295a",
            "red-teaming questions from Anthropic HH (harmful per the paper; a few are innocuous)",
        ),
        Dataset(
            name="safety-tuned-llamas-train",
            description="Safety-Tuned LLaMAs training set: 2,483 harmful instructions with safe answers",
            url=f"{_STL}/training/safety_only_data_Instructions.json",
            licence=_STL_LICENCE,
            sha256="7dde08acf87f10cf74fd1b76f56538eae8e413ae8e6b09e3f7bcd97769058dbe",
            rows=2483,
            format="records",
            split="train",
            kind="harmful",
            input="input",
            output="output",
        ),
    )
}


class ChecksumError(SaftoolError):
    """Downloaded bytes differ from the registry's sha256."""


class SourceRecord(BaseModel):
    """The sidecar beside a pulled set: NAME.source.json."""

    model_config = ConfigDict(extra="forbid")

    name: str
    source: str = Field(description="The URL or local path the file was read from.")
    upstream: str = Field(description="The registry's upstream URL.")
    sha256: str = Field(description="sha256 of the file actually imported.")
    checksum: Literal["verified", "mismatch", "unknown"] = Field(
        description="'verified' against the registry, 'mismatch' (a local file imported anyway), "
        "'unknown' (no published checksum: trust on first use)."
    )
    rows: int
    kinds: dict[str, int] = Field(description="Rows per kind.")
    path: str = Field(description="The JSONL written.")
    licence: str
    pulled_at: str
    saftool_version: str


def get(name: str) -> Dataset:
    """The registry entry for `name`; an unknown name lists the known ones."""
    if name not in DATASETS:
        raise UsageError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


def local_copy(name: str, folder: str | Path) -> Path | None:
    """The upstream file of set `name` somewhere under `folder` (found by its file name in the
    registry URL), for `pull(store, name, source=...)` from a local mirror such as ../shared/data;
    None where it is not there."""
    filename = get(name).url.rsplit("/", 1)[-1]
    found = sorted(Path(folder).rglob(filename))
    return found[0] if found else None


def target_path(store: Store, dataset: Dataset) -> Path:
    """Where a set lands: evals/NAME.jsonl for evaluation sets, prompts/NAME.jsonl for training sets."""
    if dataset.split == "eval":
        return store.eval_path(dataset.name)
    return store.prompts / f"{dataset.name}.jsonl"


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name[: -len(".jsonl")] + ".source.json")


def in_store(store: Store, name: str) -> Path | None:
    """The set's JSONL if it was pulled completely (records and sidecar both present), else None."""
    path = target_path(store, get(name))
    return path if path.exists() and sidecar_path(path).exists() else None


def pulled_evals(store: Store) -> list[str]:
    """Names of the registry's evaluation sets present in the store (each readable as
    `store.eval_path(name)`), in registry order."""
    return [d.name for d in DATASETS.values() if d.split == "eval" and in_store(store, d.name)]


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def pull(store: Store, name: str, source: str | Path | None = None, *, force: bool = False) -> Path:
    """Bring set `name` into the store and return the path of its JSONL.

    `source` is a local file or an http(s) URL to read instead of the registry URL. A set already in
    the store is left alone (no download) unless `force`.
    """
    dataset = get(name)
    path = target_path(store, dataset)
    side = sidecar_path(path)
    if not force and in_store(store, name):
        console.info(f"{name} is already in the store: {path} (--force pulls it again)")
        return path
    src = str(source) if source is not None else dataset.url
    with tempfile.TemporaryDirectory(prefix="saftool-pull-") as tmp:
        if _is_url(src):
            raw = Path(tmp) / _url_filename(src, dataset)
            _download(src, raw, dataset.name)
            local = False
        else:
            raw = Path(src)
            if not raw.is_file():
                raise InputError(src, None, None, "no such file")
            local = True
        sha = file_sha256(raw)
        checksum = _check(dataset, src, sha, local, previous=_previous_sha(side))
        fmt = detect_format(raw, dataset.format)
        kinds: Counter[str] = Counter()

        def counted() -> Iterator[Item]:
            for item in normalise(raw, dataset, fmt):
                kinds[item.kind] += 1
                yield item

        rows = write_records(counted(), path)
    if rows != dataset.rows:
        console.warn(f"{name}: expected {dataset.rows} rows, {src} has {rows}")
    write_json(
        SourceRecord(
            name=name,
            source=src if _is_url(src) else str(Path(src).resolve()),
            upstream=dataset.url,
            sha256=sha,
            checksum=checksum,
            rows=rows,
            kinds=dict(kinds),
            path=str(path),
            licence=dataset.licence,
            pulled_at=datetime.now().astimezone().isoformat(timespec="seconds"),
            saftool_version=__version__,
        ),
        side,
    )
    counts = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    console.info(f"{name}: {rows} rows ({counts}) -> {path}")
    return path


def _previous_sha(side: Path) -> str | None:
    return read_json(side, SourceRecord).sha256 if side.exists() else None


def _check(dataset: Dataset, src: str, sha: str, local: bool, previous: str | None) -> str:
    if dataset.sha256 is None:
        if previous and previous != sha:
            console.warn(
                f"{dataset.name}: {src} differs from the copy pulled before (sha256 {previous} -> {sha})"
            )
        console.info(f"{dataset.name}: no published checksum; recording sha256 {sha} (trust on first use)")
        return "unknown"
    if sha == dataset.sha256:
        return "verified"
    message = f"{dataset.name}: checksum mismatch for {src}: expected sha256 {dataset.sha256}, got {sha}"
    if not local:
        raise ChecksumError(message + "; nothing was written")
    console.warn(message + "; importing the local file anyway")
    return "mismatch"


def _url_filename(url: str, dataset: Dataset) -> str:
    tail = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return tail if "." in tail else f"{dataset.name}.{'csv' if dataset.format == 'csv' else 'json'}"


def _download(url: str, dst: Path, name: str, timeout: float = 60.0) -> None:
    """Stream `url` into `dst` with a progress bar on stderr; HTTP and network failures raise SaftoolError."""
    request = urllib.request.Request(url, headers={"User-Agent": f"saftool/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(dst, "wb") as out:
            length = response.headers.get("Content-Length")
            with console.progress(f"pull {name}", int(length) if length else None) as bar:
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    bar.advance(len(block))
    except urllib.error.HTTPError as exc:
        raise SaftoolError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SaftoolError(f"download of {url} failed: {reason}") from None


def detect_format(path: Path, hint: Format) -> Format:
    """CSV by the .csv suffix; JSON files are sniffed: an array or JSONL of objects is 'records', a
    document with an 'instructions' list is 'instructions'. Other names fall back to `hint`."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix not in (".json", ".jsonl"):
        return hint
    with open(path, "rb") as fh:
        first = fh.readline().removeprefix(b"\xef\xbb\xbf").strip()
    if first.startswith(b"["):
        return "records"
    try:
        obj = json.loads(first)
    except json.JSONDecodeError:
        return "instructions"  # a pretty-printed document spanning lines
    return "instructions" if isinstance(obj, dict) and "instructions" in obj else "records"


def normalise(path: Path, dataset: Dataset, fmt: Format) -> Iterator[Item]:
    """Stream the file's rows as Item records with ids NAME-00001, ..."""
    rows = {"csv": _csv_rows, "records": _record_rows, "instructions": _instruction_rows}[fmt](path, dataset)
    for n, (line, row) in enumerate(rows, start=1):
        yield _to_item(dataset, n, str(path), line, row)


def _csv_rows(path: Path, dataset: Dataset) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        _require_columns(str(path), reader.fieldnames or [], dataset)
        start = reader.line_num + 1  # a row's first line: cells may span several
        try:
            for row in reader:
                yield start, row
                start = reader.line_num + 1
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputError(str(path), reader.line_num, None, f"bad CSV: {exc}") from None


def _record_rows(path: Path, dataset: Dataset) -> Iterator[tuple[int, dict[str, Any]]]:
    checked = False
    for line, obj in iter_json_objects(path):
        if not checked:
            _require_columns(f"{path}:{line}", list(obj), dataset)
            checked = True
        yield line, obj


def _instruction_rows(path: Path, dataset: Dataset) -> Iterator[tuple[int, dict[str, Any]]]:
    """{"instructions": [...], "inputs": [...], "tags": [...]}: parallel lists; empty ones are absent."""
    try:
        doc = json.loads(path.read_bytes().removeprefix(b"\xef\xbb\xbf"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(str(path), getattr(exc, "lineno", None), None, f"invalid JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get(dataset.instruction), list):
        raise InputError(
            str(path), None, None, f"expected a JSON object with an {dataset.instruction!r} list"
        )
    n = len(doc[dataset.instruction])
    columns = {}
    for key, value in doc.items():
        if isinstance(value, list) and value:
            if len(value) != n:
                raise InputError(
                    str(path), None, key, f"has {len(value)} entries, {dataset.instruction!r} has {n}"
                )
            columns[key] = value
    for i in range(n):
        yield i + 1, {key: value[i] for key, value in columns.items()}


def _require_columns(where: str, present: list[str], dataset: Dataset) -> None:
    needed = [dataset.instruction] + ([dataset.label] if dataset.label else [])
    missing = [c for c in needed if c not in present]
    if missing:
        raise InputError(where, None, None, f"missing column {missing[0]!r} (columns: {', '.join(present)})")


def _cell(row: dict[str, Any], column: str | None) -> str:
    value = row.get(column) if column else None
    return "" if value is None else str(value).strip()


def _to_item(dataset: Dataset, n: int, name: str, line: int, row: dict[str, Any]) -> Item:
    instruction = _cell(row, dataset.instruction)
    if not instruction:
        raise InputError(name, line, dataset.instruction, "empty instruction")
    kind = dataset.kind
    if kind is None:
        value = _cell(row, dataset.label)
        if value not in dataset.labels:
            known = ", ".join(dataset.labels)
            raise InputError(name, line, dataset.label, f"unknown label {value!r} (expected one of: {known})")
        kind = dataset.labels[value]
    return Item(
        id=f"{dataset.name}-{n:05d}",
        instruction=instruction,
        input=_cell(row, dataset.input),
        output=_cell(row, dataset.output),
        kind=kind,
        category=_cell(row, dataset.category) or None,
        source=dataset.name,
        split=dataset.split,
    )


def listing(store: Store) -> list[dict[str, Any]]:
    """One row per registry set: what `saftool data list` shows."""
    return [
        {
            "name": d.name,
            "rows": d.rows,
            "kind": d.kind_text,
            "split": d.split,
            "licence": d.licence,
            "in_store": in_store(store, d.name) is not None,
            "path": str(target_path(store, d)),
            "url": d.url,
            "sha256": d.sha256,
            "description": d.description,
        }
        for d in DATASETS.values()
    ]
