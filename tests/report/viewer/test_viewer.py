from __future__ import annotations

import re

import pytest

from saftool.errors import SaftoolError, UsageError
from saftool.report import compute, open_judgments, report, viewer
from saftool.report.viewer import kappa, load_prices, read_data
from saftool.sql import query
from tests.report.viewer.viewerfix import SECOND_JUDGE, build_viewer_store

PRICES = {"gpt-4o-mini": {"input": 0.15, "output": 0.6}}


@pytest.fixture
def store(isolated_store):
    return build_viewer_store(isolated_store)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One store and one report, shared by the tests that only read them."""
    root = tmp_path_factory.mktemp("viewer")
    store = build_viewer_store(root / "store")
    return store, _page(store, root / "figs", prices=PRICES)


def _page(store, out, **kwargs) -> str:
    report(store, out, **kwargs)
    return (out / "index.html").read_text()


def test_data_block_holds_the_report_tables_and_every_answer(built):
    store, page = built
    assert len(re.findall(r"<script", page)) == 2 and 'src="http' not in page and "https://" not in page
    data = read_data(page)
    assert data["format"] == "saftool-viewer" and data["version"] == 1 and data["notice"] is None
    _, tables = compute(store)
    scores = data["tables"][0]
    rows = [dict(zip(scores["columns"], r)) for r in scores["rows"]]
    assert [(r["model"], r["eval_set"], r["metric"], r["n"], r["hits"]) for r in rows] == [
        (r["model"], r["eval_set"], r["metric"], r["n"], r["hits"]) for r in tables[0].rows
    ]
    assert [m["name"] for m in data["models"]] == ["alpaca", "alpaca-350", "alpaca-350-short", "zz-unlisted"]
    assert {e["name"]: e["kind"] for e in data["eval_sets"]} == {"advbench": "harmful", "safe": "benign"}
    (n,) = query(store, "SELECT count(*) FROM judgments WHERE judge.name = 'keyword'")[1][0]
    assert data["answers_total"] == n == len(data["answers"]["response"]) == 80
    # each answer's prompt, category, label and rationale are the judgment's
    _, judged = query(
        store,
        "SELECT model, eval_set, id, prompt, category, label, rationale FROM judgments WHERE judge.name = 'keyword'",
    )
    a, p = data["answers"], data["prompts"]
    shown = {
        (
            data["models"][a["model"][i]]["name"],
            data["eval_sets"][p["eval_set"][a["prompt"][i]]]["name"],
            p["id"][a["prompt"][i]],
            p["text"][a["prompt"][i]],
            data["categories"][p["category"][a["prompt"][i]]] if p["category"][a["prompt"][i]] >= 0 else None,
            data["labels"][a["label"][i]],
            data["rationales"][a["rationale"][i]],
        )
        for i in range(len(a["response"]))
    }
    assert shown == {tuple(r) for r in judged}
    assert len(data["categories"]) == 3


def test_judge_disagreement_matches_the_verdicts(built):
    from sklearn.metrics import cohen_kappa_score

    store, page = built
    data = read_data(page)
    assert data["judges"] == ["human", "keyword"]
    (pair,) = data["judge_pairs"]
    _, rows = query(
        store,
        "SELECT a.label, b.label FROM judgments a JOIN judgments b USING (model, eval_set, id) "
        f"WHERE a.judge.name = '{SECOND_JUDGE}' AND b.judge.name = 'keyword'",
    )
    human, keyword = zip(*rows)
    assert (pair["a"], pair["b"], pair["n"]) == ("human", "keyword", 80)
    assert pair["agreement"] == pytest.approx(sum(h == k for h, k in rows) / 80, abs=1e-4)
    assert pair["kappa"] == pytest.approx(cohen_kappa_score(human, keyword), abs=1e-4)
    assert 0 < pair["kappa"] < 1
    split = [i for i, code in enumerate(data["verdicts"]["human"]) if code != data["answers"]["label"][i]]
    assert len(split) == sum(h != k for h, k in rows) > 0
    assert kappa([[5, 0], [0, 5]]) == 1.0 and kappa([[10, 0], [0, 0]]) is None


def test_training_runs_tokens_and_api_cost_only_where_priced(built):
    data = read_data(built[1])
    runs = {r["model"]: r for r in data["train_runs"]}
    assert runs["alpaca-350"]["tokens_per_second"] == 2500.5 and runs["alpaca-350"]["seed"] == 0
    assert runs["alpaca-350"]["manifest"]["n_harmful"] == 350 and len(runs["alpaca-350"]["loss"]) == 20
    tokens = {(r["model"], r["backend"]): r for r in data["tokens"]}
    assert tokens[("alpaca", "hf")]["prompt_tokens"] == sum(5 + i for i in range(10))
    api = {r["model"]: r for r in data["api"]}
    mini = api["gpt-4o-mini"]
    assert (mini["stage"], mini["requests"], mini["cache_hits"]) == ("judge", 12, 8)
    assert mini["cost"] == pytest.approx((1200 * 0.15 + 24 * 0.6) / 1e6, abs=1e-9)
    assert api["local-model"]["cost"] is None  # no price given, none invented


def test_a_large_block_is_gzip_base64_and_reads_back(built, monkeypatch):
    data = read_data(built[1])
    assert 'data-encoding="json"' in built[1]
    monkeypatch.setattr(viewer, "GZIP_ABOVE", 1000)
    encoding, block = viewer.encode(data)
    page = viewer.render(data)
    assert encoding == "gzip+base64" and f'data-encoding="gzip+base64">{block}</script>' in page
    assert read_data(page) == data


def test_script_end_tags_in_answers_cannot_break_the_page(store, tmp_path):
    path = next((store.root / "judgments" / "keyword").glob("alpaca/advbench.jsonl"))
    path.write_text(
        path.read_text().replace("Sure. Step one", "</script><script>alert(1)</script> Step one", 1)
    )
    page = _page(store, tmp_path / "figs")
    assert len(re.findall(r"</script", page)) == 2
    assert any("</script><script>alert(1)" in r for r in read_data(page)["answers"]["response"])


def test_sampled_answers_keep_every_model_on_the_same_prompts(store):
    con, judge = open_judgments(store)
    from saftool.report import _tables

    tables, by_model, members = _tables(con, store, judge, None)
    data = viewer.viewer_data(con, store, judge, tables, by_model, members, max_answers=40)
    a = data["answers"]
    assert data["answers_total"] == 80 and 40 <= len(a["response"]) < 80
    prompts = {}
    for m, p in zip(a["model"], a["prompt"]):
        prompts.setdefault(m, set()).add(p)
    assert len({frozenset(s) for s in prompts.values()}) == 1  # pairs stay paired


def test_store_without_judgments_gets_a_viewer_that_says_so(isolated_store, tmp_path):
    from saftool.store import Store

    out = tmp_path / "figs"
    with pytest.raises(SaftoolError, match="no judgments"):
        report(Store(isolated_store), out)
    data = read_data((out / "index.html").read_text())
    assert "no judgments" in data["notice"] and data["answers"]["response"] == []
    assert not (out / "scores.csv").exists()


def test_prices_file_is_checked(tmp_path):
    good = tmp_path / "p.toml"
    good.write_text('[prices."gpt-4o-mini"]\ninput = 0.15\noutput = 0.6\n')
    assert load_prices(good) == PRICES
    for text, message in [
        ("x = 1\n", "no \\[prices\\] table"),
        ('[prices."m"]\ninput = "cheap"\n', "prices: m.input: expected a non-negative number"),
        ('[prices."m"]\nper_request = 1\n', "prices: m: expected a table with input and/or output"),
        ("[prices\n", "not valid TOML"),
    ]:
        good.write_text(text)
        with pytest.raises(UsageError, match=message):
            load_prices(good)
