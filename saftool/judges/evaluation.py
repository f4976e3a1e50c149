"""`judge eval`: how far a judge agrees with human labels.

Reads CSV or JSONL files with a prompt, an answer (`response` or XSTest's `completion`) and a human
label (`final_label`, `human_label` or `label`). A row may name its prompt instead of carrying it: an
`eval_set` and an `id` of an eval set in the store (as response records do), so a labelled sample of
answers to public prompts need not copy the prompts (tests/judges/data/smollm2_sample.jsonl). XSTest's values are understood: 1_full_compliance,
2_full_refusal, 3_partial_refusal; plain refusal/compliance/partial too. Scores either a judge run
on the answers or a column of labels already in the files (XSTest's `gpt4_label`, `strmatch_label`).
Reports both the three-class view and the binary one (partial counts as refusal); a prediction that
is `unknown` counts as a disagreement and is tallied apart. A row labelled `unknown` by people (under
XSTest's rubric, an empty answer: nothing was answered or refused) is left out and counted.

How a judge's verdicts on the labelled rows are made (`estimate`):

* `in-sample`: the judge as it is. For a judge fitted on these very rows (the `learned` default
  weights on XSTest) or written looking at them (the `keyword` rules) this flatters it.
* `prompt-grouped`: a judge that learns from labels (`Judge.learns_from_labels`: `learned`, a
  cascade that starts with it) is refitted five times, each time scoring a fifth of the prompts
  with weights fitted on the other four fifths.
* `leave-one-model-out`: the same, one source model at a time: rows are grouped by a `model`
  column where the files have one, else by file (XSTest ships one file per model).

`--errors FILE` writes each row where judge and people disagree, with the verdict's evidence.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saftool.errors import InputError, UsageError
from saftool.io import iter_json_objects, read_records, write_records
from saftool.judge import Judge, JudgeInput, Verdict, judge_inputs, learns_no_labels
from saftool.records import Item
from saftool.store import Store

ESTIMATES = ("in-sample", "prompt-grouped", "leave-one-model-out")
PROMPT_FOLDS = 5

HUMAN_COLUMNS = ("final_label", "human_label", "label")
RESPONSE_COLUMNS = ("response", "completion")
THREE = ("compliance", "refusal", "partial")
_NAMES = {
    "1_full_compliance": "compliance",
    "2_full_refusal": "refusal",
    "3_partial_refusal": "partial",
    "compliance": "compliance",
    "refusal": "refusal",
    "partial": "partial",
    "full_compliance": "compliance",
    "full_refusal": "refusal",
    "partial_refusal": "partial",
}


def normalize_label(value: Any) -> str:
    """A label in XSTest or saftool spelling as compliance/refusal/partial; anything else unknown."""
    return _NAMES.get(str(value or "").strip().lower(), "unknown")


def read_labelled(
    paths: Sequence[str | Path], human_column: str | None = None, store: Store | None = None
) -> Iterator[dict[str, Any]]:
    """Labelled rows; a row with `eval_set` and `id` but no `prompt` takes its prompt (the item's
    instruction, what judges read) and, lacking one, its `kind` from `store`'s eval set. Rows people
    labelled `unknown` (empty answers) carry no verdict to agree with or learn from: left out."""
    return filter(_has_verdict, _read_all(paths, human_column, store))


def _has_verdict(row: dict[str, Any]) -> bool:
    return row["human"] != "unknown"


def _read_all(paths: Sequence[str | Path], human_column: str | None, store: Store | None) -> Iterator[dict[str, Any]]:
    """Every labelled row, those labelled `unknown` too."""
    prompts = _EvalPrompts(store or Store())
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise InputError(str(path), None, None, "no such file")
        if path.suffix.lower() == ".csv":
            with open(path, newline="", encoding="utf-8-sig") as fh:
                rows = ((i + 2, row) for i, row in enumerate(csv.DictReader(fh)))
                yield from _checked(path, rows, human_column, prompts)
        else:
            yield from _checked(path, iter_json_objects(path), human_column, prompts)


class _EvalPrompts:
    """Items of the store's eval sets by id, each set read once, when a labelled row first names it."""

    def __init__(self, store: Store):
        self.store = store
        self._sets: dict[str, dict[str, Item]] = {}

    def item(self, path: Path, line: int, row: dict[str, Any]) -> Item:
        name = str(row["eval_set"])
        if name not in self._sets:
            src = self.store.eval_path(name)
            if not src.is_file():
                raise InputError(
                    str(path),
                    line,
                    "eval_set",
                    f"names eval set {name!r}, which is not in the store {self.store.root} "
                    f"(bring it in with `saftool data pull {name}`)",
                )
            self._sets[name] = {item.id: item for item in read_records(src, Item)}
        item = self._sets[name].get(str(row["id"]))
        if item is None:
            raise InputError(str(path), line, "id", f"no item {row['id']!r} in eval set {name!r}")
        return item


def _checked(path: Path, rows, human_column: str | None, prompts: _EvalPrompts) -> Iterator[dict[str, Any]]:
    for line, row in rows:
        if "prompt" not in row and "eval_set" in row and "id" in row:
            item = prompts.item(path, line, row)
            row = {**row, "prompt": item.instruction, "kind": row.get("kind") or item.kind}
        response = next((c for c in RESPONSE_COLUMNS if c in row), None)
        human = human_column or next((c for c in HUMAN_COLUMNS if c in row), None)
        if response is None or "prompt" not in row:
            raise InputError(
                str(path),
                line,
                None,
                "needs a 'prompt' (or an 'eval_set' and 'id') and a 'response' (or 'completion') column",
            )
        if human is None or human not in row:
            raise InputError(
                str(path), line, None, f"no human label column (one of {', '.join(HUMAN_COLUMNS)})"
            )
        human_label = normalize_label(row[human])
        if human_label == "unknown" and str(row[human]).strip().lower() != "unknown":
            raise InputError(
                str(path), line, human, f"unknown human label {row[human]!r} (compliance, refusal, partial or unknown)"
            )
        yield {**row, "response": row[response], "human": human_label, "_file": str(path), "_line": line}


@dataclass
class Agreement:
    n: int
    accuracy: float
    kappa: float
    precision: float  # of "refusal" (binary: refusal or partial)
    recall: float
    f1: float
    unknown: int
    labels: tuple[str, ...]
    confusion: list[list[int]]  # rows: human label, columns: predicted label (+ unknown)


@dataclass
class EvalResult:
    source: str
    binary: Agreement
    three_class: Agreement
    estimate: str = "in-sample"
    rows: list[dict[str, Any]] = field(default_factory=list)  # as read_labelled yields them
    predicted: list[str] = field(default_factory=list)  # per row: refusal, compliance, partial, unknown
    verdicts: list[Verdict | None] = field(default_factory=list)  # per row; None when scoring a column
    left_out: int = 0  # rows people labelled unknown (empty answers), not scored


def _binary(label: str) -> str:
    return {"partial": "refusal"}.get(label, label)


def agreement(human: Sequence[str], predicted: Sequence[str], labels: tuple[str, ...]) -> Agreement:
    n = len(human)
    if n == 0:
        raise UsageError("no labelled rows to score")
    cols = (*labels, "unknown")
    index = {label: i for i, label in enumerate(cols)}
    confusion = [[0] * len(cols) for _ in labels]
    for h, p in zip(human, predicted):
        confusion[index[h]][index[p]] += 1
    agree = sum(confusion[i][i] for i in range(len(labels)))
    accuracy = agree / n
    h_counts, p_counts = Counter(human), Counter(predicted)
    expected = sum(h_counts[c] * p_counts[c] for c in labels) / n**2
    kappa = (accuracy - expected) / (1 - expected) if expected < 1 else 1.0
    r = index["refusal"]
    tp = confusion[r][r]
    pred_ref = sum(row[r] for row in confusion)
    precision = tp / pred_ref if pred_ref else 0.0
    recall = tp / h_counts["refusal"] if h_counts["refusal"] else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Agreement(n, accuracy, kappa, precision, recall, f1, p_counts["unknown"], labels, confusion)


def evaluate(
    paths: Sequence[str | Path],
    *,
    judge: Judge | None = None,
    column: str | None = None,
    human_column: str | None = None,
    estimate: str = "in-sample",
    store: Store | None = None,
) -> EvalResult:
    """Agreement of `judge` (or of the labels in `column`) with the human labels in `paths`; the
    judge's verdicts made as `estimate` says (see the module docstring). Rows that name their prompt
    by `eval_set` and `id` find it in `store`."""
    if (judge is None) == (column is None):
        raise UsageError("score either a judge or a label column, not both")
    if estimate not in ESTIMATES:
        raise UsageError(f"--estimate must be one of {', '.join(ESTIMATES)}")
    every = list(_read_all(paths, human_column, store))
    rows = list(filter(_has_verdict, every))  # what read_labelled yields
    verdicts: list[Verdict | None] = [None] * len(rows)
    if column is not None:
        if estimate != "in-sample":
            raise UsageError("a label column is fixed; only --estimate in-sample applies to it")
        if any(column not in row for row in rows):
            raise UsageError(f"column {column!r} is missing from some of the labelled files")
        predicted = [normalize_label(row[column]) for row in rows]
        source = f"column {column}"
    else:
        inputs = [JudgeInput(row["prompt"], row["response"], _kind(row)) for row in rows]
        if estimate == "in-sample":
            found = judge_inputs(judge, inputs)
        else:
            if not judge.learns_from_labels:  # said before any complaint about the groups
                raise learns_no_labels(judge)
            refused = [int(row["human"] != "compliance") for row in rows]
            found = judge.held_out(inputs, refused, _groups(rows, estimate))
        for i, verdict in found:
            verdicts[i] = verdict
        predicted = [v.label for v in verdicts]
        source = f"judge {judge.name}" + ("" if estimate == "in-sample" else f", {estimate}")
    result = scored(source, rows, predicted, verdicts, estimate)
    result.left_out = len(every) - len(rows)
    return result


def scored(
    source: str,
    rows: list[dict[str, Any]],
    predicted: list[str],
    verdicts: list[Verdict | None],
    estimate: str = "in-sample",
) -> EvalResult:
    """The agreement of `predicted` with the rows' human labels, binary and three-class."""
    human = [row["human"] for row in rows]
    return EvalResult(
        source,
        agreement([_binary(h) for h in human], [_binary(p) for p in predicted], ("compliance", "refusal")),
        agreement(human, predicted, THREE),
        estimate,
        rows,
        predicted,
        verdicts,
    )


def prompt_folds(prompts: Sequence[str], folds: int = PROMPT_FOLDS, seed: int = 0):
    """Fold number per row (numpy array); rows with the same prompt share a fold."""
    import numpy as np

    distinct = sorted(set(prompts))
    order = np.random.RandomState(seed).permutation(len(distinct))
    fold = {distinct[j]: rank % folds for rank, j in enumerate(order)}
    return np.array([fold[p] for p in prompts], dtype=int)


def _groups(rows: Sequence[dict[str, Any]], estimate: str) -> list[str]:
    if estimate == "prompt-grouped":
        return [f"fold {k}" for k in prompt_folds([row["prompt"] for row in rows])]
    groups = [str(row["model"]) if row.get("model") else row["_file"] for row in rows]
    if len(set(groups)) < 2:
        raise UsageError(
            "--estimate leave-one-model-out needs answers of at least two models: several labelled "
            "files (one per model) or a 'model' column"
        )
    return groups


def write_errors(result: EvalResult, dst: str | Path) -> int:
    """Write the rows where the prediction and the human label differ (three-class; `binary` says
    whether they differ with partial counted as refusal too), with the judge's evidence. Returns
    the count."""
    out = []
    for row, predicted, verdict in zip(result.rows, result.predicted, result.verdicts):
        if predicted == row["human"]:
            continue
        out.append(
            {
                "file": row["_file"],
                "line": row["_line"],
                "id": row.get("id"),
                "prompt": row["prompt"],
                "response": row["response"],
                "human": row["human"],
                "predicted": predicted,
                "binary": _binary(predicted) != _binary(row["human"]),
                "rationale": verdict.rationale if verdict else None,
                "evidence": verdict.evidence if verdict else None,
            }
        )
    return write_records(out, dst)


def _kind(row: dict[str, Any]) -> str:
    """A `kind` column, XSTest's prompt `label` (safe/unsafe) or its `type` (the unsafe prompts'
    types start with `contrast_`); harmful when none says."""
    value = str(row.get("kind") or row.get("label") or "").lower()
    if value in ("benign", "safe"):
        return "benign"
    if value in ("harmful", "unsafe"):
        return "harmful"
    kind_type = str(row.get("type") or "")
    if kind_type:
        return "harmful" if kind_type.startswith("contrast") else "benign"
    return "harmful"
