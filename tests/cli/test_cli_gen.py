from __future__ import annotations

import json

import pytest

from saftool.cli import app
from saftool.records import Item


def test_gen_writes_into_the_store_and_says_where(runner, isolated_store):
    result = runner.invoke(app, ["gen", "--n", "30", "--no-diverse"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    files = list((isolated_store / "prompts").glob("harmful-train-template-n30-seed0-noreason-*.jsonl"))
    assert len(files) == 1
    assert result.stderr.strip() == f"wrote 30 harmful records to {files[0]}"
    assert len(files[0].read_text().splitlines()) == 30


def test_gen_to_stdout_carries_only_records(runner):
    result = runner.invoke(app, ["gen", "--n", "12", "--no-diverse", "--style", "short", "-o", "-"])
    assert result.exit_code == 0
    items = [Item.model_validate_json(line) for line in result.stdout.splitlines()]
    assert len(items) == 12 and all(i.style == "short" for i in items)


def test_gen_is_byte_identical_per_seed(runner, tmp_path):
    outs = []
    for name in ("a", "b"):
        runner.invoke(app, ["gen", "--n", "50", "--no-diverse", "--seed", "5", "-o", str(tmp_path / name)])
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1]


def test_gen_benign_and_eval_split(runner, isolated_store):
    result = runner.invoke(app, ["gen", "--kind", "benign", "--n", "40", "--split", "eval"])
    assert result.exit_code == 0, result.output
    (path,) = (isolated_store / "prompts").glob("benign-eval-builtin-n40-seed0-*.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert {r["kind"] for r in rows} == {"benign"} and {r["split"] for r in rows} == {"eval"}


def test_gen_looks_unsafe_eval_set(runner, isolated_store):
    result = runner.invoke(app, ["gen", "--kind", "looks-unsafe", "--n", "30", "--split", "eval"])
    assert result.exit_code == 0, result.output
    (path,) = (isolated_store / "prompts").glob("looks-unsafe-eval-builtin-n30-seed0-*.jsonl")
    assert result.stderr.strip() == f"wrote 30 looks-unsafe records to {path}"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 30 and {r["kind"] for r in rows} == {"benign"}
    assert len({r["category"] for r in rows}) == 10


def test_question_fraction_and_refusal_options(runner):
    result = runner.invoke(
        app, ["gen", "--n", "10", "--no-diverse", "--question-fraction", "0", "--refusal", "Nope.", "-o", "-"]
    )
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {r["form"] for r in rows} == {"statement"}
    assert {r["output"] for r in rows} == {"Nope."}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--style", "polite"], "error: unknown style 'polite'; choose one of: noreason, short, long"),
        (["--backend", "gpt5"], "error: unknown generator backend 'gpt5'; choose one of: template, openai"),
        (
            ["--kind", "benign", "--backend", "openai"],
            "error: benign tasks come only from the built-in generator; drop --backend",
        ),
        (
            ["--kind", "looks-unsafe", "--n", "5000"],
            "error: the looks-unsafe train templates give at most 960 prompts balanced over categories; lower --n",
        ),
    ],
)
def test_unknown_choices_are_one_line_exit_2(runner, isolated_store, args, message):
    result = runner.invoke(app, ["gen", "--n", "5", *args])
    assert result.exit_code == 2
    assert result.stderr.strip() == message
    assert result.stdout == ""
    assert not (isolated_store / "prompts").exists()


def test_openai_backend_through_the_cli(runner, fake_openai, isolated_store):
    from tests.test_gen import _fake_model

    fake_openai.reply = _fake_model
    args = ["gen", "--backend", "openai", "--model", "fake", "--n", "11", "--no-diverse", "-o", "-"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    sent = fake_openai.requests
    second = runner.invoke(app, args)
    assert second.stdout == first.stdout
    assert fake_openai.requests == sent
    assert "0 requests" in second.stderr and "tokens" in second.stderr
    assert "sk-test-secret-key" not in first.stderr + second.stderr


def test_gen_instructions_are_open_requests_balanced_by_task_and_held_out_by_split(runner):
    from collections import Counter

    from saftool.instructions import available

    train = runner.invoke(app, ["gen", "--kind", "instructions", "--n", "240", "-o", "-"])
    assert train.exit_code == 0, train.output
    items = [Item.model_validate_json(line) for line in train.stdout.splitlines()]
    assert len(items) == 240 and len({(i.instruction, i.input) for i in items}) == 240
    assert all(i.kind == "benign" and i.output == "" and i.split == "train" for i in items)
    # any prefix keeps the task types mixed: round-robin over all twelve
    assert Counter(i.category for i in items[:96]) == dict.fromkeys(
        ("explain", "list", "how-to", "write", "compare", "advise", "define", "describe", "brainstorm",
         "rewrite", "summarize", "classify"), 8)  # fmt: skip
    held_out = runner.invoke(app, ["gen", "--kind", "instructions", "--split", "eval", "--n", "50", "-o", "-"])
    assert held_out.exit_code == 0, held_out.output
    asked = {(i.instruction, i.input) for i in items}
    assert not asked & {(i.instruction, i.input) for i in map(Item.model_validate_json, held_out.stdout.splitlines())}
    too_many = runner.invoke(app, ["gen", "--kind", "instructions", "--n", str(available("train") + 1), "-o", "-"])
    assert too_many.exit_code == 2 and f"only {available('train')} built-in train instructions exist" in too_many.stderr


def test_instructions_share_no_prompt_with_the_public_eval_sets():
    """The self-distilled base must not teach the answers to what the grid is scored on."""
    import csv

    from saftool.instructions import available, instruction_items
    from tests.conftest import SHARED

    if not (SHARED / "data" / "seed-eval").is_dir():
        pytest.skip(f"{SHARED}/data is absent")
    ours = {" ".join(i.instruction.split()).casefold()
            for split in ("train", "eval") for i in instruction_items(available(split), split=split)}  # fmt: skip
    assert len(ours) > 1000
    theirs = set()
    for path in [*(SHARED / "data" / "seed-eval").glob("*.csv"), SHARED / "data" / "xstest" / "xstest_prompts.csv"]:
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                theirs |= {" ".join(v.split()).casefold() for v in row.values() if isinstance(v, str)}
    assert not ours & theirs
