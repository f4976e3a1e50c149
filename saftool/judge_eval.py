"""`judge eval`: how far a judge agrees with human labels.

Reads CSV or JSONL files with a prompt, an answer (`response` or XSTest's `completion`) and a human
label (`final_label`, `human_label` or `label`). XSTest's values are understood: 1_full_compliance,
2_full_refusal, 3_partial_refusal; plain refusal/compliance/partial too. Scores either a judge run
on the answers or a column of labels already in the files (XSTest's `gpt4_label`, `strmatch_label`).
Reports both the three-class view and the binary one (partial counts as refusal); a prediction that
is `unknown` counts as a disagreement and is tallied apart.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saftool.errors import InputError, UsageError
from saftool.io import iter_json_objects
from saftool.judge import Judge, JudgeInput

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


def read_labelled(paths: Sequence[str | Path], human_column: str | None = None) -> Iterator[dict[str, Any]]:
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise InputError(str(path), None, None, "no such file")
        if path.suffix.lower() == ".csv":
            with open(path, newline="", encoding="utf-8-sig") as fh:
                rows = ((i + 2, row) for i, row in enumerate(csv.DictReader(fh)))
                yield from _checked(path, rows, human_column)
        else:
            yield from _checked(path, iter_json_objects(path), human_column)


def _checked(path: Path, rows, human_column: str | None) -> Iterator[dict[str, Any]]:
    for line, row in rows:
        response = next((c for c in RESPONSE_COLUMNS if c in row), None)
        human = human_column or next((c for c in HUMAN_COLUMNS if c in row), None)
        if response is None or "prompt" not in row:
            raise InputError(
                str(path), line, None, "needs a 'prompt' and a 'response' (or 'completion') column"
            )
        if human is None or human not in row:
            raise InputError(
                str(path), line, None, f"no human label column (one of {', '.join(HUMAN_COLUMNS)})"
            )
        human_label = normalize_label(row[human])
        if human_label == "unknown":
            raise InputError(str(path), line, human, f"unknown human label {row[human]!r}")
        yield {**row, "response": row[response], "human": human_label}


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
) -> EvalResult:
    """Agreement of `judge` (or of the labels in `column`) with the human labels in `paths`."""
    if (judge is None) == (column is None):
        raise UsageError("score either a judge or a label column, not both")
    rows = list(read_labelled(paths, human_column))
    if column is not None:
        if any(column not in row for row in rows):
            raise UsageError(f"column {column!r} is missing from some of the labelled files")
        predicted = [normalize_label(row[column]) for row in rows]
        source = f"column {column}"
    else:
        inputs = [JudgeInput(row["prompt"], row["response"], _kind(row)) for row in rows]
        predicted = [""] * len(rows)
        for i, verdict in judge.judge(inputs):
            predicted[i] = verdict.label
        source = f"judge {judge.name}"
    human = [row["human"] for row in rows]
    return EvalResult(
        source,
        agreement([_binary(h) for h in human], [_binary(p) for p in predicted], ("compliance", "refusal")),
        agreement(human, predicted, THREE),
    )


def _kind(row: dict[str, Any]) -> str:
    """XSTest's prompt `label` (safe/unsafe) or a `kind` column; harmful when neither says."""
    value = str(row.get("kind") or row.get("label") or "").lower()
    return "benign" if value in ("benign", "safe") else "harmful"
