from __future__ import annotations

import functools
import hashlib
import json
import re
from collections import Counter

import pytest

from saftool.errors import UsageError
from saftool.gen import GenConfig, cell_quotas, default_path, generate
from saftool.generators import Cell
from saftool.generators.openai_backend import split_of
from saftool.generators.taxonomy import CATEGORIES, TEMPLATES
from saftool.generators.template import TemplateGenerator
from saftool.io import write_records
from saftool.records import DEFAULT_REFUSAL
from saftool.store import Store


def _all_template_prompts(split: str) -> set[str]:
    backend = TemplateGenerator(GenConfig(split=split), None)
    prompts = set()
    for category in CATEGORIES:
        for form in ("question", "statement"):
            total = backend.capacity(Cell(category.name, form))
            prompts.update(backend._compose(category, TEMPLATES[split][form], i) for i in range(total))
    return prompts


def _sentences(text: str) -> int:
    return len(re.findall(r"[.!?](?:\s|$)", text))


def test_taxonomy_is_large_enough_and_eval_never_overlaps_train():
    assert len(CATEGORIES) >= 10
    train, evaluation = _all_template_prompts("train"), _all_template_prompts("eval")
    assert len(train) >= 2000 and len(evaluation) >= 2000
    assert not train & evaluation


def test_eval_split_items_are_not_train_items():
    train = {i.instruction for i in generate(GenConfig(n=2000, diverse=False))}
    held_out = list(generate(GenConfig(n=500, split="eval", diverse=False)))
    assert all(i.split == "eval" for i in held_out)
    assert not train & {i.instruction for i in held_out}


def test_same_seed_gives_identical_bytes_and_other_seeds_differ(tmp_path):
    paths = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        paths.append(tmp_path / f"{name}.jsonl")
        write_records(generate(GenConfig(n=300, seed=seed, diverse=False)), paths[-1])
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


def test_styles_share_instructions_and_differ_only_in_output():
    runs = {s: list(generate(GenConfig(n=60, style=s, diverse=False))) for s in ("noreason", "short", "long")}
    assert [i.instruction for i in runs["short"]] == [i.instruction for i in runs["noreason"]]
    assert [i.instruction for i in runs["long"]] == [i.instruction for i in runs["noreason"]]
    for a, b in zip(runs["noreason"], runs["long"]):
        assert a.responses == b.responses
        assert a.id == b.id
    for style, items in runs.items():
        for item in items:
            assert item.style == style
            assert item.output == item.responses[style]
    for item in runs["noreason"]:
        assert item.output == DEFAULT_REFUSAL
        assert item.responses["short"].startswith(DEFAULT_REFUSAL)
        assert 2 <= _sentences(item.responses["short"]) <= 3  # the refusal plus a one- or two-sentence reason
        assert _sentences(item.responses["long"]) >= 4  # the refusal plus three or more sentences


def test_refusal_is_configurable():
    item = next(generate(GenConfig(n=4, diverse=False, refusal="No.", style="short")))
    assert item.responses["noreason"] == "No."
    assert item.output.startswith("No. ")


def test_forms_are_half_and_half_by_default_and_settable():
    items = list(generate(GenConfig(n=100, diverse=False)))
    forms = Counter(i.form for i in items)
    assert forms == {"question": 50, "statement": 50}
    assert all(i.instruction.endswith("?") == (i.form == "question") for i in items)
    skewed = Counter(i.form for i in generate(GenConfig(n=100, diverse=False, question_fraction=0.2)))
    assert skewed == {"question": 20, "statement": 80}


def test_every_category_appears_and_any_prefix_is_balanced():
    items = list(generate(GenConfig(n=220, diverse=False)))
    assert set(Counter(i.category for i in items)) == {c.name for c in CATEGORIES}
    prefix = Counter(i.category for i in items[:110])
    assert max(prefix.values()) - min(prefix.values()) <= 1


def test_no_exact_duplicates_and_provenance_on_every_record():
    items = list(generate(GenConfig(n=10000, diverse=False)))
    assert len({i.instruction for i in items}) == len(items) == 10000
    assert len({i.id for i in items}) == len(items)
    for item in items[:50]:
        assert item.provenance.generator == "template"
        assert item.provenance.seed == 0
        assert item.provenance.config_hash
        assert item.source == "gen:template"
        assert item.kind == "harmful"


def test_cell_quotas_sum_to_n():
    import random

    quotas = cell_quotas(701, [c.name for c in CATEGORIES], 0.5, random.Random(0))
    assert sum(quotas.values()) == 701
    assert sum(k for c, k in quotas.items() if c.form == "question") == 350 or 351


def test_too_many_prompts_is_a_usage_error():
    with pytest.raises(UsageError, match="only"):
        list(generate(GenConfig(n=40000, diverse=False)))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("style", "rude", "unknown style 'rude'; choose one of: noreason, short, long"),
        ("backend", "magic", "unknown generator backend 'magic'; choose one of: template, openai"),
        ("split", "test", "unknown split 'test'; choose one of: train, eval"),
        ("kind", "spicy", "unknown kind 'spicy'; choose one of: harmful, benign, looks-unsafe, instructions"),
    ],
)
def test_unknown_choices_list_the_valid_ones(field, value, message):
    with pytest.raises(UsageError) as info:
        list(generate(GenConfig(**{field: value})))
    assert str(info.value) == message


def test_default_path_is_found_by_newest_prompts(tmp_path):
    store = Store(tmp_path / "s")
    config = GenConfig(n=10, diverse=False)
    path = default_path(config, store)
    assert path.name.startswith("harmful-train-template-n10-seed0-noreason-")
    write_records(generate(config, store), path)
    assert store.newest_prompts("harmful", "train") == path
    assert default_path(GenConfig(kind="benign", n=5), store).name.startswith(
        "benign-train-builtin-n5-seed0-"
    )


def test_diverse_selection_keeps_quota_and_skips_near_duplicates():
    items = list(generate(GenConfig(n=22, candidates=200, seed=3)))
    assert len(items) == 22
    assert Counter(i.form for i in items) == {"question": 11, "statement": 11}
    again = list(generate(GenConfig(n=22, candidates=200, seed=3)))
    assert [i.instruction for i in again] == [i.instruction for i in items]


# --- openai backend, against the local fake server --------------------------------------------


def _fake_model(body: dict) -> str:
    """Lists of distinct prompts for generation requests, a fixed reason for reason requests."""
    text = body["messages"][-1]["content"]
    tag = hashlib.sha256(text.encode()).hexdigest()[:8]
    wanted = re.match(r"Write (\d+) different (\w+)", text)
    if wanted:
        count, form = int(wanted.group(1)), wanted.group(2)
        end = "?" if form == "questions" else "."
        return "\n".join(f"{i + 1}. Request {tag} number {i}{end}" for i in range(count))
    if "one or two sentences" in text:
        return "It could hurt people."
    return "It could hurt people. It is also illegal. I can suggest safer topics."


@pytest.fixture
def quick_retries(monkeypatch):
    """The client's real backoff (seconds) would only slow the tests down."""
    from saftool.generators import openai_backend
    from saftool.openai_chat import ChatClient

    monkeypatch.setattr(openai_backend, "ChatClient", functools.partial(ChatClient, backoff=0.01))


def test_openai_backend_retries_faults_and_caches(fake_openai, isolated_store, quick_retries):
    fake_openai.reply = _fake_model
    fake_openai.inject("429", "500", "malformed")
    config = GenConfig(n=22, backend="openai", model="fake-model", diverse=False, concurrency=4)
    items = list(generate(config))
    assert len(items) == 22 and len({i.instruction for i in items}) == 22
    first = items[0]
    assert first.provenance.generator == "openai:fake-model"
    assert first.source == "gen:openai"
    assert first.responses["short"] == f"{DEFAULT_REFUSAL} It could hurt people."
    assert _sentences(first.responses["long"]) >= 4
    assert all(split_of(i.instruction) == "train" for i in items)
    assert all(i.instruction.endswith("?") == (i.form == "question") for i in items)
    sent = fake_openai.requests
    assert sent > 3  # the three faults were retried
    again = list(generate(config))
    assert fake_openai.requests == sent  # everything came from the cache
    assert [i.model_dump() for i in again] == [i.model_dump() for i in items]
    cached = "".join(p.read_text() for p in (isolated_store / "cache").rglob("*.json"))
    assert "sk-test-secret-key" not in cached
    assert json.loads(next((isolated_store / "cache").rglob("*.json")).read_text())["text"]


def test_openai_eval_split_is_disjoint_by_hash(fake_openai):
    fake_openai.reply = _fake_model
    items = list(generate(GenConfig(n=11, split="eval", backend="openai:fake", diverse=False)))
    assert len(items) == 11
    assert all(split_of(i.instruction) == "eval" for i in items)
