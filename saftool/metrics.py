"""Answer normalisation for exact match, shared by `infer` benchmarks and `report`'s SQL.

A prediction matches its reference when both agree after trimming whitespace and dropping trailing
full stops, so "Paris." matches "Paris" but "paris" and "Paris, France" do not. Case counts: some
built-in tasks (write a word in capitals) are about case.
"""

from __future__ import annotations

import re

_TRAILING = re.compile(r"[\s.]+$")


def normalize_answer(text: str) -> str:
    return _TRAILING.sub("", text.strip())


def exact_match(prediction: str, reference: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(reference)


def normalize_sql(column: str) -> str:
    """The same normalisation as a DuckDB expression over `column`."""
    return f"regexp_replace(trim({column}), '[\\s.]+$', '')"
