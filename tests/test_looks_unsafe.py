from __future__ import annotations

import csv
import re
import string
from collections import Counter

import pytest

from saftool.errors import UsageError
from saftool.gen import GenConfig, generate
from saftool.generators.taxonomy import OPENERS, TEMPLATES
from saftool.io import write_records
from saftool.judge import judge_store, load_judge
from saftool.looks_unsafe import CATEGORY_NAMES, FAMILIES, capacity, looks_unsafe_items, prompt
from saftool.report import compute
from saftool.store import Store


def _every_prompt(split: str = "eval") -> list[tuple[str, str]]:
    return [(c, prompt(c, i, split)) for c in CATEGORY_NAMES for i in range(capacity(c, split))]


def _frame_pattern(frame: str) -> re.Pattern:
    """A frame as a regex whose slots match any filler."""
    return re.compile(re.sub(r"\\\{\d\\\}", ".+", re.escape(frame)) + "$", re.IGNORECASE)


def test_200_are_distinct_balanced_safe_records():
    items = list(looks_unsafe_items(200))
    assert len({i.instruction for i in items}) == 200 and len({i.id for i in items}) == 200
    assert Counter(i.category for i in items) == dict.fromkeys(CATEGORY_NAMES, 20)
    for item in items:
        # benign = should be answered: `report` counts refusals of it as conservativeness
        assert item.kind == "benign" and item.split == "eval" and item.source == "gen:looks-unsafe"
        assert item.output == ""  # no reference, so no helpfulness score
        assert item.provenance.generator == "looks-unsafe"
    # interleaved: any prefix keeps the category mix
    assert {i.category for i in items[: len(CATEGORY_NAMES)]} == set(CATEGORY_NAMES)


@pytest.mark.parametrize("split", ["train", "eval"])
def test_every_template_prompt_is_distinct_and_every_slot_is_used(split):
    texts = [" ".join(t.split()).casefold() for _, t in _every_prompt(split)]
    assert len(texts) == len(set(texts))
    for patterns in FAMILIES[split].values():
        for pattern in patterns:
            for frame in pattern.frames:
                fields = {f for _, f, _, _ in string.Formatter().parse(frame) if f is not None}
                assert fields == {str(k) for k in range(len(pattern.slots))}, frame
    # enough per category that other seeds give other prompts, not the same 20 reshuffled
    assert min(capacity(c, split) for c in CATEGORY_NAMES) >= 90


def test_the_train_family_shares_no_frame_filler_or_prompt_with_the_eval_family():
    """The held-out set stays honest: a model trained on the train family's answers meets eval
    prompts in wordings and about topics it never saw."""

    def parts(split: str) -> tuple[set[str], set[str]]:
        frames = {f for patterns in FAMILIES[split].values() for p in patterns for f in p.frames}
        fillers = {v.casefold() for patterns in FAMILIES[split].values() for p in patterns for s in p.slots for v in s}
        return frames, fillers

    (train_frames, train_fillers), (eval_frames, eval_fillers) = parts("train"), parts("eval")
    assert not train_frames & eval_frames
    assert not train_fillers & eval_fillers
    # no prompt of one family is a wording of the other's frames (a frame may differ in text but
    # still produce the same sentence shape, e.g. through case)
    eval_patterns = [_frame_pattern(f) for f in eval_frames]
    train_patterns = [_frame_pattern(f) for f in train_frames]
    assert [t for _, t in _every_prompt("train") if any(p.match(t) for p in eval_patterns)] == []
    assert [t for _, t in _every_prompt("eval") if any(p.match(t) for p in train_patterns)] == []


def test_train_records_are_balanced_answerable_and_never_eval_records():
    train = list(looks_unsafe_items(300, split="train"))
    assert Counter(i.category for i in train) == dict.fromkeys(CATEGORY_NAMES, 30)
    assert all(i.kind == "benign" and i.split == "train" and i.id.startswith("looks-unsafe-train-") for i in train)
    held_out = {i.instruction for i in looks_unsafe_items(1000, split="eval")}
    assert not held_out & {i.instruction for i in train}


def test_the_same_seed_gives_the_same_bytes_and_another_seed_other_prompts(tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        write_records(looks_unsafe_items(200, seed=seed), tmp_path / name)
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()
    a = {i.instruction for i in looks_unsafe_items(200, seed=3)}
    c = {i.instruction for i in looks_unsafe_items(200, seed=4)}
    assert len(a & c) < 100


def test_no_prompt_is_phrased_as_a_harmful_train_template():
    """A refusal of these must come from the content, not from a phrasing trained to be refused."""
    train = [t for form in TEMPLATES["train"].values() for t in form]
    patterns = [
        re.compile(re.escape(opener) + re.escape(t).replace(re.escape("{act}"), ".+") + "$", re.IGNORECASE)
        for opener in OPENERS
        for t in train
    ]
    clashes = [text for _, text in _every_prompt() if any(p.match(text) for p in patterns)]
    assert clashes == []


def test_categories_are_xstests_safe_types(shared):
    with open(shared / "data" / "xstest" / "xstest_prompts.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert set(CATEGORY_NAMES) == {r["type"] for r in rows if r["label"] == "safe"}
    # written by the project, not copied
    theirs = {" ".join(r["prompt"].split()).casefold() for r in rows}
    assert not theirs & {" ".join(t.split()).casefold() for _, t in _every_prompt()}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            GenConfig(kind="looks-unsafe", n=5000),
            "the looks-unsafe train templates give at most 960 prompts balanced over categories; lower --n",
        ),
        (
            GenConfig(kind="looks-unsafe", split="eval", n=5000),
            "the looks-unsafe eval templates give at most 1050 prompts balanced over categories; lower --n",
        ),
        (
            GenConfig(kind="looks-unsafe", split="eval", backend="openai"),
            "looks-unsafe prompts come only from the built-in generator; drop --backend",
        ),
    ],
)
def test_bad_requests_fail_before_any_record(config, message):
    with pytest.raises(UsageError) as info:
        next(generate(config))
    assert str(info.value) == message


def test_report_scores_the_set_as_conservativeness(isolated_store):
    """Answers to the set are scored like any safe set: refusals are conservativeness, and without
    references there is no helpfulness row."""
    items = list(generate(GenConfig(kind="looks-unsafe", split="eval", n=20)))
    rows = [
        {
            "id": item.id,
            "model": "m",
            "eval_set": "heldout-looks-unsafe",
            "kind": item.kind,
            "category": item.category,
            "prompt": item.instruction,
            "reference": item.output,
            "response": "I'm sorry, but I can't assist with that." if k < 6 else "Sure, here is how.",
        }
        for k, item in enumerate(items)
    ]
    write_records(rows, isolated_store / "responses" / "m" / "heldout-looks-unsafe.jsonl")
    store = Store(isolated_store)
    judge_store(store, load_judge("keyword"))
    _, tables = compute(store)
    scores = {(r["metric"], r["eval_set"]): (r["n"], r["hits"]) for r in tables[0].rows}
    assert scores == {("conservativeness", "heldout-looks-unsafe"): (20, 6)}
