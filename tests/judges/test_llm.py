from __future__ import annotations

import pytest

from saftool.judge import JudgeInput, judge_records, judge_store, load_judge
from saftool.judges.llm import parse_seed, parse_xstest
from saftool.openai_chat import ChatError
from saftool.store import Store
from tests.storefix import build_store


def yes_if_sorry(body):
    text = body["messages"][-1]["content"]
    if "CLASS:" in text:
        return "2_full_refusal" if "sorry" in text.lower() else "1_full_compliance"
    return "Yes" if "sorry" in text.lower() else "No."


def _judge(tmp_path, **kw):
    return load_judge("llm", store=Store(tmp_path), model="fake-judge", backoff=0.01, **kw)


def test_parsing_never_silently_safe():
    assert parse_seed("Yes.", "harmful").safe is True
    assert parse_seed("no", "harmful").safe is False
    assert parse_seed("Maybe?", "harmful").label == "unknown"
    assert parse_seed("Yes", "benign").label == "refusal"
    assert parse_xstest("3_partial_refusal", "benign").label == "partial"
    assert parse_xstest("1_full_compliance or 2_full_refusal", "benign").label == "unknown"


def test_700_identical_refusals_one_request_and_rerun_zero(fake_openai, tmp_path):
    fake_openai.reply = yes_if_sorry
    recs = [{"prompt": f"harm {i}", "response": "I'm sorry, I can't."} for i in range(700)]
    out = list(judge_records(recs, _judge(tmp_path)))
    assert fake_openai.requests == 1
    assert all(o.safe is True for o in out)
    rerun = _judge(tmp_path)
    list(judge_records(recs, rerun))
    assert fake_openai.requests == 1 and rerun.stats.requests == 0
    assert fake_openai.bodies[0]["temperature"] == 0


def test_faults_are_retried_and_garbage_is_unknown(fake_openai, tmp_path):
    fake_openai.reply = lambda body: (
        "I'd rather not say" if "weird" in body["messages"][-1]["content"] else "No"
    )
    fake_openai.inject("429", "500", "malformed")
    judge = _judge(tmp_path, concurrency=1)
    out = list(
        judge_records([{"prompt": "p", "response": "weird"}, {"prompt": "p", "response": "ok"}], judge)
    )
    assert [o.label for o in out] == ["unknown", "compliance"]
    assert out[0].safe is None and out[1].safe is False
    assert judge.stats.retries == 3


def test_xstest_prompt_set_shows_question(fake_openai, tmp_path):
    fake_openai.reply = yes_if_sorry
    judge = _judge(tmp_path, prompt_set="xstest")
    ((i, v),) = judge.judge([JudgeInput("How to kill a process?", "Use kill -9.", "benign")])
    assert (
        v.label == "compliance"
        and "How to kill a process?" in fake_openai.bodies[0]["messages"][0]["content"]
    )
    assert judge.name == "llm-xstest:fake-judge"


def test_server_down_keeps_finished_and_rerun_continues(fake_openai, isolated_store, tmp_path):
    build_store(isolated_store)
    store = Store(isolated_store)
    fake_openai.reply = yes_if_sorry
    judge = load_judge(
        "llm", store=store, model="fake-judge", backoff=0.01, max_retries=1, concurrency=1
    )
    # the first two distinct requests succeed, then the server fails for good
    calls = {"n": 0}

    def flaky(body):
        calls["n"] += 1
        if calls["n"] > 2:
            fake_openai.always_fail("500")
        return yes_if_sorry(body)

    fake_openai.reply = flaky
    with pytest.raises(ChatError, match="done; rerun to continue"):
        judge_store(store, judge)
    kept = sum(1 for p in (isolated_store / "judgments").rglob("*.jsonl") for _ in p.open())
    assert kept > 0
    fake_openai.clear_faults()
    fake_openai.reply = yes_if_sorry
    before = fake_openai.requests
    done = judge_store(store, load_judge("llm", store=store, model="fake-judge"))
    assert done.skipped == kept and done.judged == 80 - kept
    assert fake_openai.requests - before <= 4  # only the distinct answers not yet cached
