from __future__ import annotations

import re
from collections import Counter

import pytest

from saftool import benign
from saftool.benign import CAPITALS, FAMILY_NAMES, OPPOSITES, benign_items, family_quotas
from saftool.errors import UsageError
from saftool.io import write_records


def _check_answer(family: str, instruction: str, answer: str) -> None:
    """Recompute each answer from its instruction: the tasks are exactly verifiable."""
    word = re.search(r"(?:word|Reverse the word|Write|Convert|Spell|Repeat the word) (\w+)", instruction)
    if family == "reverse_word":
        assert answer == word.group(1)[::-1]
    elif family == "uppercase":
        assert answer == word.group(1).upper()
    elif family == "first_letter":
        assert answer == instruction.rstrip("?").split()[-1][0]
    elif family == "last_letter":
        assert answer == instruction.rstrip("?").split()[-1][-1]
    elif family == "count_letters":
        assert answer == str(len(instruction.rstrip("?").split()[-1]))
    elif family == "addition":
        a, b = map(int, re.findall(r"\d+", instruction))
        assert answer == str(a + b)
    elif family == "next_number":
        assert answer == str(int(re.findall(r"\d+", instruction)[0]) + 1)
    elif family == "sort_numbers":
        numbers = sorted(map(int, re.findall(r"\d+", instruction)))
        assert answer == ", ".join(map(str, numbers))
    elif family == "list_item":
        items = instruction.split(": ", 1)[1].rstrip("?").split(", ")
        assert answer == (items[0] if "first" in instruction else items[-1])
    elif family == "capital":
        assert answer in CAPITALS.values()
    elif family == "opposite":
        assert answer in OPPOSITES.values()


def test_items_are_distinct_verifiable_and_cover_every_family():
    items = list(benign_items(3000))
    assert len(items) == 3000
    assert len({i.instruction for i in items}) == 3000
    assert len({i.id for i in items}) == 3000
    assert set(Counter(i.category for i in items)) == set(FAMILY_NAMES)
    for item in items:
        assert item.kind == "benign" and item.split == "train" and item.source == "gen:benign"
        assert item.output and len(item.output) <= 40  # short answers a tiny model can produce
        assert item.provenance.generator == "benign"
        _check_answer(item.category, item.instruction, item.output)


def test_eval_split_never_repeats_a_train_instruction():
    train = {i.instruction for i in benign_items(6000)}
    held_out = list(benign_items(600, split="eval"))
    assert all(i.split == "eval" for i in held_out)
    assert not train & {i.instruction for i in held_out}
    for item in held_out:
        _check_answer(item.category, item.instruction, item.output)


_OPERAND = re.compile(r"(?:the word|Write|Convert|Spell) (\w+)")
_ONE_WORD = ("reverse_word", "uppercase", "repeat_word", "first_letter", "last_letter", "count_letters")


def test_eval_holds_out_instances_of_a_shared_vocabulary():
    """Eval asks words and facts train teaches, but never in a (family, operand) pair train shows."""
    train = list(benign_items(6000))
    held_out = list(benign_items(600, split="eval"))
    train_words = {w for i in train for w in re.findall(r"[A-Za-z]+", i.instruction + " " + i.output)}
    pairs = {(i.category, _OPERAND.search(i.instruction).group(1)) for i in train if i.category in _ONE_WORD}
    subjects = {
        (i.category, i.instruction.rstrip("?.").split()[-1])
        for i in train
        if i.category in ("capital", "opposite")
    }
    for item in held_out:
        assert set(re.findall(r"[A-Za-z]+", item.instruction)) <= train_words  # no unseen vocabulary
        if item.category in _ONE_WORD:
            assert (item.category, _OPERAND.search(item.instruction).group(1)) not in pairs
        elif item.category in ("capital", "opposite"):
            # the fact is taught in train, with another phrasing
            assert (item.category, item.instruction.rstrip("?.").split()[-1]) in subjects
    assert set(Counter(i.category for i in held_out)) == set(FAMILY_NAMES)


def test_deterministic_per_seed(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    write_records(benign_items(500, seed=1), a)
    write_records(benign_items(500, seed=1), b)
    write_records(benign_items(500, seed=2), c)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_quotas_sum_to_n_and_small_families_give_way():
    assert sum(family_quotas(1234).values()) == 1234
    # the fact families have few distinct phrasings; the shortfall goes to other families
    items = list(benign_items(5000))
    assert len(items) == 5000
    assert Counter(i.category for i in items)["capital"] == len(CAPITALS) * 3


def test_asking_for_more_than_exists_says_how_many_exist(monkeypatch):
    facts = tuple(f for f in benign.FAMILIES if f.name in ("capital", "opposite"))
    monkeypatch.setattr(benign, "FAMILIES", facts)
    exist = len(CAPITALS) + len(OPPOSITES)  # one eval phrasing per fact
    with pytest.raises(UsageError) as info:
        list(benign_items(exist + 1, split="eval"))
    assert (
        str(info.value)
        == f"the built-in tasks hold only {exist} distinct eval items; ask for at most {exist}"
    )
    assert len(list(benign_items(exist, split="eval"))) == exist
