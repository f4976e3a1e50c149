from __future__ import annotations

import json
from collections import Counter

import pytest

from saftool.errors import InputError, UsageError
from saftool.gen import GenConfig, default_path, generate
from saftool.hashing import file_sha256
from saftool.io import read_json, read_records, write_records
from saftool.mix import MixConfig, build_mix, default_name, write_mix
from saftool.records import DEFAULT_REFUSAL, Item, MixManifest
from saftool.store import Store


@pytest.fixture
def store(isolated_store) -> Store:
    return Store(isolated_store)


@pytest.fixture
def harm_file(store):
    config = GenConfig(n=40, diverse=False)
    path = default_path(config, store)
    write_records(generate(config, store), path)
    return path


def test_default_mix_uses_newest_gen_file_and_builtin_base(store, harm_file):
    items, manifest = build_mix(MixConfig(name="harm40", n_harm=40, base_n=200), store)
    assert len(items) == 240
    assert manifest.n_harmful == 40 and manifest.n_benign == 200 and manifest.n_total == 240
    assert manifest.counts["kind"] == {"benign": 200, "harmful": 40}
    assert manifest.counts["style"] == {"noreason": 40, "none": 200}
    assert manifest.counts["form"] == {"none": 200, "question": 20, "statement": 20}
    assert manifest.inputs[0].path == "builtin:benign"
    assert manifest.inputs[1].path == str(harm_file)
    assert manifest.inputs[1].sha256 == file_sha256(harm_file)
    assert manifest.inputs[1].records == 40
    assert all(i.responses is None for i in items)  # a mix holds only the trained output


def test_written_mix_and_manifest(store, harm_file):
    items, manifest = build_mix(MixConfig(name="m", n_harm=10, base_n=50), store)
    done = write_mix(items, manifest, store.mix_path("m"))
    assert done.sha256 == file_sha256(store.mix_path("m"))
    on_disk = read_json(store.manifest_path("m"), MixManifest)
    assert on_disk == done and on_disk.path == str(store.mix_path("m"))
    rows = [json.loads(line) for line in store.mix_path("m").read_text().splitlines()]
    assert all({"instruction", "input", "output"} <= set(row) for row in rows)


def test_restyle_and_nested_subsets(store, harm_file):
    long_items, manifest = build_mix(MixConfig(name="l", n_harm=20, style="long", base_n=0), store)
    assert manifest.style == "long"
    assert all(i.style == "long" and i.output.startswith(DEFAULT_REFUSAL + " ") for i in long_items)
    small, _ = build_mix(MixConfig(name="s", n_harm=10, base_n=0), store)
    assert {i.instruction for i in small} < {i.instruction for i in long_items}
    assert all(i.output == DEFAULT_REFUSAL for i in small)


def test_shuffle_follows_seed(store, harm_file):
    a, _ = build_mix(MixConfig(name="a", n_harm=10, base_n=30, seed=1), store)
    b, _ = build_mix(MixConfig(name="b", n_harm=10, base_n=30, seed=1), store)
    c, _ = build_mix(MixConfig(name="c", n_harm=10, base_n=30, seed=2), store)
    assert [i.id for i in a] == [i.id for i in b] != [i.id for i in c]
    assert Counter(i.kind for i in a) == {"benign": 30, "harmful": 10}


def test_too_many_harmful_says_how_many_exist(store, harm_file):
    with pytest.raises(UsageError) as info:
        build_mix(MixConfig(name="x", n_harm=41), store)
    assert str(info.value) == f"asked for 41 harmful examples but {harm_file} holds only 40"


def test_zero_harmful_needs_no_gen_file(store):
    items, manifest = build_mix(MixConfig(name="alpaca", n_harm=0, base_n=25), store)
    assert len(items) == 25 and manifest.n_harmful == 0 and manifest.style is None
    assert [d.path for d in manifest.inputs] == ["builtin:benign"]


def test_no_gen_file_in_store_is_explained(store):
    with pytest.raises(UsageError, match="no harmful prompts in .*saftool gen --n 700"):
        build_mix(MixConfig(name="x", n_harm=5), store)


def test_alpaca_json_array_and_jsonl_base(store, harm_file, tmp_path):
    rows = [
        {"instruction": f"Say {i}.", "input": None if i % 2 else "ctx", "output": str(i), "extra": 1}
        for i in range(5)
    ]
    array = tmp_path / "alpaca.json"
    array.write_text(json.dumps(rows, indent=2))
    lines = tmp_path / "alpaca.jsonl"
    lines.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for path in (array, lines):
        items, manifest = build_mix(MixConfig(name="x", n_harm=3, base=str(path)), store)
        base = [i for i in items if i.kind == "benign"]
        assert len(base) == 5 and {i.source for i in base} == {"alpaca"}
        assert {i.input for i in base} == {"", "ctx"}
        assert manifest.inputs[0].sha256 == file_sha256(path)


def test_eval_items_are_refused_as_training_input(store, tmp_path):
    held_out = tmp_path / "eval.jsonl"
    write_records(generate(GenConfig(n=5, split="eval", diverse=False)), held_out)
    with pytest.raises(InputError, match="held out"):
        build_mix(MixConfig(name="x", n_harm=5, harm=str(held_out)), store)
    with pytest.raises(InputError, match=f"{held_out}:1: split: item .* is held out"):
        build_mix(MixConfig(name="x", n_harm=0, base=str(held_out)), store)


def test_bad_names_are_rejected(store):
    for name in ("../x", "a/b", ""):
        with pytest.raises(UsageError, match="invalid mix name"):
            build_mix(MixConfig(name=name, n_harm=0, base_n=1), store)


def test_default_names_follow_the_study():
    assert default_name(0, None) == "alpaca"
    assert default_name(350, None) == "harm350"
    assert default_name(700, "noreason") == "harm700"
    assert default_name(700, "short") == "harm700-short"


def test_mix_items_read_back_as_items(store, harm_file):
    items, manifest = build_mix(MixConfig(name="r", n_harm=5, base_n=5), store)
    write_mix(items, manifest, store.mix_path("r"))
    assert len(list(read_records(store.mix_path("r"), Item))) == 10


def test_plain_alpaca_refusals_are_read_as_harmful_items(store, tmp_path):
    rows = [
        {"instruction": f"Do harm {i}.", "input": "" if i % 2 else "ctx", "output": f"I can't help with {i}."}
        for i in range(6)
    ]
    path = tmp_path / "safety_only_data_Instructions.json"
    path.write_text(json.dumps(rows, indent=4))
    items, manifest = build_mix(MixConfig(name="x", n_harm=4, base_n=3, harm=str(path)), store)
    harm = [i for i in items if i.kind == "harmful"]
    assert sorted(i.output for i in harm) == [f"I can't help with {i}." for i in range(4)]
    assert {i.source for i in harm} == {"safety_only_data_Instructions"}
    assert len({i.id for i in harm}) == 4 and all(
        i.id.startswith("safety_only_data_Instructions-") for i in harm
    )
    assert manifest.counts["source"]["safety_only_data_Instructions"] == 4
    assert manifest.inputs[1].records == 6 and manifest.inputs[1].sha256 == file_sha256(path)
    with pytest.raises(UsageError, match="holds only 6"):
        build_mix(MixConfig(name="x", n_harm=7, base_n=0, harm=str(path)), store)
    with pytest.raises(InputError, match="has no 'short' refusal"):
        build_mix(MixConfig(name="x", n_harm=2, base_n=0, style="short", harm=str(path)), store)


def test_bad_plain_harm_row_names_file_line_and_field(store, tmp_path):
    path = tmp_path / "refusals.jsonl"
    path.write_text('{"instruction": "a", "output": "no"}\n{"output": "no"}\n')
    with pytest.raises(InputError) as info:
        build_mix(MixConfig(name="x", n_harm=1, base_n=0, harm=str(path)), store)
    assert str(info.value) == f"{path}:2: instruction: Field required"


def test_safety_tuned_llamas_file_mixes(store, shared):
    path = shared / "data" / "safety-tuned-llamas" / "training" / "safety_only_data_Instructions.json"
    items, manifest = build_mix(MixConfig(name="stl", n_harm=2483, base_n=10, harm=str(path)), store)
    assert manifest.n_harmful == 2483 and manifest.counts["source"]["safety_only_data_Instructions"] == 2483


def test_an_unnamed_mix_takes_the_studys_name():
    assert MixConfig().name == "harm700"
    assert MixConfig(n_harm=0).name == "alpaca"
    assert MixConfig(n_harm=350, style="short").name == "harm350-short"
    assert MixConfig(n_harm=350, style="noreason", name=None).name == "harm350"
    assert MixConfig(n_harm=5, name="mine").name == "mine"
