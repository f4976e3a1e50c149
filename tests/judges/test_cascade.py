"""`cascade:A,B` against the fake OpenAI server (a real socket): the second judge gets exactly the
answers the first is unsure of, a rerun sends nothing, and a second judge that is not configured
fails before any answer is judged."""

from __future__ import annotations

import json

import pytest

from saftool.cli import app
from saftool.errors import SaftoolError, UsageError
from saftool.judge import JudgeInput, judge_records, judge_store, judge_store_name, load_judge
from saftool.judges import learned
from saftool.judges.cascade import doubtful
from saftool.report import compute
from saftool.store import Store
from tests.judges.test_learned import bag_of_words, labelled_rows, write_csv
from tests.judges.test_llm import yes_if_sorry

THRESHOLD = 0.7


@pytest.fixture(autouse=True)
def _bag_of_words(monkeypatch):
    """Every learned judge here embeds with the test's bag of words, not MiniLM."""
    monkeypatch.setattr(learned, "_minilm", bag_of_words)


@pytest.fixture
def weights(tmp_path):
    write_csv(tmp_path / "labels.csv", labelled_rows())
    path = tmp_path / "w.json"
    learned.fit_files([tmp_path / "labels.csv"], path, embedder=bag_of_words)
    return path


def answers(n: int = 40) -> list[dict[str, str]]:
    """Distinct answers (so that each doubtful one is its own request): plain refusals, plain
    answers and disclaimers before an answer, to prompts the fit never saw."""
    shapes = [
        "I cannot help with plan {i}.",
        "Mix flour and water {i} times, then bake.",
        "As an AI, I don't hold personal opinions. However, plan {i} is legal for everyone.",
        "Sorry, but plan {i} is not something I will do.",
        "There is no reason plan {i} should be forbidden.",
    ]
    return [
        {
            "id": f"a{i}",
            "prompt": f"Why should group {i % 7} do plan {i}?",
            "response": shapes[i % 5].format(i=i),
        }
        for i in range(n)
    ]


def cascade(weights, tmp_path, **options):
    return load_judge(
        f"cascade:learned:{weights},llm",
        model="fake-judge",
        store=Store(tmp_path),
        threshold=THRESHOLD,
        backoff=0.01,
        **options,
    )


def test_requests_equal_doubtful_answers_and_a_rerun_makes_none(fake_openai, weights, tmp_path):
    fake_openai.reply = yes_if_sorry
    recs = answers()
    first = learned.LearnedJudge(f"learned:{weights}", confidence=True)
    alone = dict(first.judge([JudgeInput(r["prompt"], r["response"]) for r in recs]))
    unsure = {i for i, v in alone.items() if doubtful(v, THRESHOLD)}
    assert 0 < len(unsure) < len(recs)
    assert all("confidence" in v.evidence for v in alone.values())

    judge = cascade(weights, tmp_path)
    out = list(judge_records(recs, judge))
    assert fake_openai.requests == len(unsure) == judge.sent
    assert judge.name == f"cascade:learned:{weights},llm-seed:fake-judge"
    for i, judgment in enumerate(out):
        if i in unsure:
            assert judgment.evidence["decided_by"] == "llm-seed:fake-judge"
            assert judgment.evidence["second"]["reply"] in ("Yes", "No.")
            assert judgment.evidence["first"]["label"] == alone[i].label
        else:
            assert judgment.evidence["decided_by"] == f"learned:{weights}"
            assert judgment.label == alone[i].label and judgment.evidence["first"] == alone[i].evidence

    rerun = cascade(weights, tmp_path)
    assert [j.label for j in judge_records(recs, rerun)] == [j.label for j in out]
    assert fake_openai.requests == len(unsure) and rerun.second.stats.requests == 0


def test_cascade_in_the_store_and_the_report_counts_what_it_saved(
    fake_openai, weights, tmp_path, isolated_store
):
    fake_openai.reply = yes_if_sorry
    folder = isolated_store / "responses" / "m1"
    folder.mkdir(parents=True)
    recs = [{**r, "model": "m1", "eval_set": "e", "kind": "harmful"} for r in answers()]
    (folder / "e.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    store = Store(isolated_store)
    judge = cascade(weights, tmp_path)
    judge_store(store, judge)
    sent = fake_openai.requests
    assert sent == judge.sent > 0
    again = cascade(weights, tmp_path)
    progress = judge_store(store, again)
    assert progress.skipped == len(recs) and again.judged == 0 and fake_openai.requests == sent
    _, tables = compute(store)
    cost = tables[-1]
    assert cost.title == "Cascade: answers sent to llm-seed:fake-judge and requests saved"
    assert cost.rows == [
        {
            "model": "m1",
            "eval_set": "e",
            "answers": len(recs),
            "sent_to_second": sent,
            "saved": len(recs) - sent,
        }
    ]


def test_unconfigured_second_judge_fails_before_any_answer_is_judged(runner, weights, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(learned, "analyse", lambda text: calls.append(text))
    with pytest.raises(UsageError, match="the llm judge needs a model"):
        load_judge(f"cascade:learned:{weights},llm")
    with pytest.raises(SaftoolError, match="set OPENAI_API_KEY"):  # a model, but no key and no server
        load_judge(f"cascade:learned:{weights},llm", model="gpt-4o")
    lines = "".join(json.dumps(r) + "\n" for r in answers(3))
    result = runner.invoke(
        app, ["judge", "-i", "-", "--judge", f"cascade:learned:{weights},llm:gpt-4o"], input=lines
    )
    assert result.exit_code == 1 and "set OPENAI_API_KEY" in result.stderr and result.stdout == ""
    assert calls == []  # the first judge never ran


def test_cascade_spec_errors(weights):
    with pytest.raises(UsageError, match="write a cascade as cascade:FIRST,SECOND"):
        load_judge("cascade:learned")
    with pytest.raises(UsageError, match="the first judge keyword reports no confidence"):
        load_judge("cascade:keyword,keyword")
    with pytest.raises(UsageError, match="--cascade-threshold must be between 0.5 and 1"):
        load_judge(f"cascade:learned:{weights},keyword", threshold=0.2)


def test_judge_eval_scores_a_cascade_held_out(fake_openai, weights, tmp_path):
    from saftool.judges.evaluation import evaluate

    fake_openai.reply = yes_if_sorry
    rows = labelled_rows()
    for i, row in enumerate(rows):
        row["model"] = f"m{i % 2}"
    write_csv_with_model(tmp_path / "two.csv", rows)
    result = evaluate(
        [tmp_path / "two.csv"], judge=cascade(weights, tmp_path), estimate="leave-one-model-out"
    )
    assert result.binary.n == len(rows) and result.estimate == "leave-one-model-out"
    decided = {v.evidence["decided_by"] for v in result.verdicts}
    assert decided <= {f"learned:{weights}", "llm-seed:fake-judge"}
    with pytest.raises(UsageError, match="judge keyword does not learn from labels"):
        evaluate([tmp_path / "two.csv"], judge=load_judge("keyword"), estimate="leave-one-model-out")


def write_csv_with_model(path, rows) -> None:
    import csv

    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["prompt", "completion", "final_label", "model"])
        writer.writeheader()
        writer.writerows(rows)


def test_cli_cascade_says_what_went_to_the_second_judge(
    runner, fake_openai, weights, isolated_store, monkeypatch
):
    fake_openai.reply = yes_if_sorry
    lines = "".join(json.dumps(r) + "\n" for r in answers(10))
    spec = f"cascade:learned:{weights},llm"
    args = ["judge", "-i", "-", "-j", spec, "-m", "fake-judge", "--cascade-threshold", str(THRESHOLD)]
    result = runner.invoke(app, args, input=lines)
    assert result.exit_code == 0, result.output
    out = [json.loads(x) for x in result.stdout.splitlines()]
    sent = sum(o["evidence"]["decided_by"] == "llm-seed:fake-judge" for o in out)
    assert 0 < sent < 10 and fake_openai.requests == sent
    assert (
        f"cascade: {sent} of 10 answers sent to llm-seed:fake-judge, {10 - sent} decided by learned:"
        in result.stderr
    )
    assert f"llm judge: {sent} requests, 0 cached" in result.stderr


def test_each_judge_names_its_store_folder_before_it_is_built(fake_openai, weights, tmp_path):
    """The run plan asks a judge's class for its store name (no model loaded, no key); the judge
    once built must write under exactly that name."""
    for spec, more in [
        ("keyword", {}),
        ("learned", {}),
        (f"learned:{weights}", {}),
        ("llm", {"model": "fake-judge"}),
        ("llm:fake-judge", {"prompt_set": "xstest"}),
        (f"cascade:learned:{weights},llm:fake-judge", {}),
        (f"cascade:learned:{weights},llm", {"model": "fake-judge", "prompt_set": "xstest"}),
    ]:
        assert judge_store_name(spec, **more) == load_judge(spec, store=Store(tmp_path), **more).name, spec
