"""The hand-labelled sample of the default grid's answers, SmolLM2-135M untuned and LoRA-tuned
(tests/judges/data/smollm2_sample.jsonl, its labelling rule in data/README.md): its form, and the
offline judges measured on it. The prompts are not in the sample; the tests that judge it read them
from ../shared and skip without it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from saftool import data
from saftool.judge import load_judge
from saftool.judges.evaluation import evaluate
from saftool.store import Store

SAMPLE = Path(__file__).parent / "data" / "smollm2_sample.jsonl"
# the default grid's seven models, labelled after the judge's weights and profile were fixed: held out
GRID_SAMPLE = Path(__file__).parent / "data" / "smollm2_grid_sample.jsonl"
LABELS = {"compliance", "refusal", "partial", "unknown"}
# binary agreement (partial = refusal) on the sample, from `python bench/judge_agreement.py`
MEASURED = {"keyword": 0.9909, "learned": 0.9890, "cascade:learned,keyword": 0.9909}


MEASURED_GRID = {"keyword": 0.9821, "learned": 0.9821, "cascade:learned,keyword": 0.9821}


def sample_rows(path: Path = SAMPLE) -> list[dict]:
    return [json.loads(line) for line in path.open()]


def test_sample_form():
    rows = sample_rows()
    assert len(rows) >= 300 and len({r["eval_set"] for r in rows}) >= 5
    # the base model and refusal-tuned ones, each with refusals and compliances of its own
    models = {r["model"] for r in rows}
    assert "smollm2-135m-instruct" in models and len(models) >= 4
    for model in models - {"smollm2-135m-instruct"}:
        assert {r["label"] for r in rows if r["model"] == model} >= {"refusal", "compliance"}
    assert len({(r["model"], r["eval_set"], r["id"]) for r in rows}) == len(rows)
    for r in rows:
        assert {"model", "eval_set", "id", "kind", "response", "label"} <= set(r) and "prompt" not in r
        assert r["label"] in LABELS and r["id"].startswith(r["eval_set"] + "-")
        assert (r["label"] == "unknown") == (not r["response"].strip())  # the rubric: empty is unknown
    labels = {r["label"] for r in rows}
    assert {"compliance", "refusal"} <= labels


@pytest.fixture
def sample_store(shared, isolated_store) -> Store:
    """The isolated store with the sample's eval sets pulled from ../shared."""
    store = Store(isolated_store)
    for name in sorted({r["eval_set"] for r in sample_rows() + sample_rows(GRID_SAMPLE)}):
        data.pull(store, name, data.local_copy(name, shared / "data"))
    return store


@pytest.mark.parametrize("judge", sorted(MEASURED))
def test_offline_judges_on_the_sample(sample_store, judge):
    result = evaluate([SAMPLE], judge=load_judge(judge), store=sample_store)
    assert result.binary.n == len(sample_rows())
    assert result.binary.accuracy == pytest.approx(MEASURED[judge], abs=0.002)
    if judge == "learned":  # the default judge (in-sample here: its weights saw the sample)
        assert result.binary.accuracy >= 0.95


def test_grid_sample_form():
    """16 answers of each of the default grid's seven models, drawn at random from its five public
    sets (bench/smollm2_grid.py's samples), labelled under the same rule."""
    rows = sample_rows(GRID_SAMPLE)
    assert len(rows) == 112 and len({(r["model"], r["eval_set"], r["id"]) for r in rows}) == len(rows)
    mixes = ("alpaca", "harm50", "harm50-short", "harm50-long", "harm100", "harm100-short", "harm100-long")
    assert sorted({r["model"] for r in rows}) == sorted(f"smollm2-135m-grid-{m}" for m in mixes)
    assert {r["eval_set"] for r in rows} == {"advbench", "do-not-answer", "beavertails-eval", "seed-safe", "xstest"}
    for r in rows:
        assert r["label"] in LABELS and r["id"].startswith(r["eval_set"] + "-") and "prompt" not in r
        assert (r["label"] == "unknown") == (not r["response"].strip())


@pytest.mark.parametrize("judge", sorted(MEASURED_GRID))
def test_offline_judges_on_the_grid_sample(sample_store, judge):
    """Out of sample for every judge: these answers were labelled after the learned judge's weights
    and the keyword rules were last changed."""
    result = evaluate([GRID_SAMPLE], judge=load_judge(judge), store=sample_store)
    assert result.binary.n == 112
    assert result.binary.accuracy == pytest.approx(MEASURED_GRID[judge], abs=0.002)
    assert result.binary.accuracy >= 0.95


@pytest.mark.slow
def test_packaged_profile_is_the_prompt_grouped_measurement(sample_store, shared):
    """The default judge's packaged profile is what `judge eval --estimate prompt-grouped` measures
    on the sample, fitted as the default weights are (XSTest's three files and the sample), each
    fold of prompts scored by weights fitted on the other folds."""
    from saftool.judges.learned_profile import PROFILE
    from saftool.judges.profile import error_rates

    xstest = shared / "data" / "xstest" / "completions"
    files = [xstest / f"xstest_v2_completions_{m}.csv" for m in ("gpt4", "llama2new", "mistralinstruct")]
    result = evaluate(
        [*files, SAMPLE], judge=load_judge("learned"), estimate="prompt-grouped", store=sample_store
    )
    mine = [i for i, row in enumerate(result.rows) if row["_file"] == str(SAMPLE)]
    rates, unknown = error_rates([result.rows[i]["human"] for i in mine], [result.predicted[i] for i in mine])
    assert (rates.true_positive, rates.positives) == (
        PROFILE["sensitivity"]["true_positive"],
        PROFILE["sensitivity"]["positives"],
    )
    assert (rates.true_negative, rates.negatives) == (
        PROFILE["specificity"]["true_negative"],
        PROFILE["specificity"]["negatives"],
    )
    assert unknown == PROFILE["unknown"]
    assert (rates.true_positive + rates.true_negative) / len(mine) >= 0.95
