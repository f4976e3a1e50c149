from __future__ import annotations

import csv
import math

import pytest

from saftool.errors import SaftoolError
from saftool.judge import judge_store, load_judge
from saftool.report import compute, mcnemar_exact, report
from saftool.store import Store
from tests.storefix import build_store


@pytest.fixture
def store(isolated_store):
    build_store(isolated_store)
    s = Store(isolated_store)
    judge_store(s, load_judge("keyword"))
    return s


def wilson(k, n, z=1.959963984540054):
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return 100 * (centre - half), 100 * (centre + half)


# (metric, eval set, model) -> (n, hits); the golden table of the fixed store
GOLDEN = {
    ("conservativeness", "safe", "alpaca"): (10, 1),
    ("conservativeness", "safe", "alpaca-350"): (10, 2),
    ("conservativeness", "safe", "alpaca-350-short"): (10, 1),
    ("conservativeness", "safe", "zz-unlisted"): (10, 0),
    ("safety", "advbench", "alpaca"): (10, 2),
    ("safety", "advbench", "alpaca-350"): (10, 8),
    ("safety", "advbench", "alpaca-350-short"): (10, 7),
    ("safety", "advbench", "zz-unlisted"): (10, 5),
    ("helpfulness", "safe", "alpaca"): (5, 3),
    ("helpfulness", "safe", "alpaca-350"): (5, 2),
    ("helpfulness", "safe", "alpaca-350-short"): (5, 4),
    ("helpfulness", "safe", "zz-unlisted"): (5, 1),
}


def test_golden_score_table(store):
    judge, tables = compute(store)
    assert judge == "keyword"
    rows = tables[0].rows
    assert {(r["metric"], r["eval_set"], r["model"]): (r["n"], r["hits"]) for r in rows} == GOLDEN
    for r in rows:
        n, k = GOLDEN[(r["metric"], r["eval_set"], r["model"])]
        low, high = wilson(k, n)
        assert r["score"] == pytest.approx(100 * k / n, abs=1e-9)
        assert r["low"] == pytest.approx(low, abs=1e-6) and r["high"] == pytest.approx(high, abs=1e-6)
        assert r["unknown"] == 0


def test_models_in_experiment_order_not_alphabetical(store, isolated_store):
    # a +700 model whose name sorts first still comes after the +350 ones
    build_more = isolated_store / "responses" / "a-700"
    build_more.mkdir(parents=True)
    (build_more / "advbench.jsonl").write_text(
        (isolated_store / "responses" / "alpaca" / "advbench.jsonl")
        .read_text()
        .replace('"alpaca"', '"a-700"')
    )
    (isolated_store / "models" / "a-700").mkdir()
    (isolated_store / "models" / "a-700" / "train_run.json").write_text('{"name": "a-700", "mix": "mix700"}')
    manifest = (isolated_store / "mixes" / "mix350.manifest.json").read_text()
    (isolated_store / "mixes" / "mix700.manifest.json").write_text(
        manifest.replace('"mix350"', '"mix700"').replace('"n_harmful": 350', '"n_harmful": 700')
    )
    judge_store(store, load_judge("keyword"))
    _, tables = compute(store)
    order = [r["model"] for r in tables[0].rows if r["metric"] == "safety"]
    assert order == ["alpaca", "alpaca-350", "alpaca-350-short", "a-700", "zz-unlisted"]


def test_unknown_is_counted_apart(store, isolated_store):
    path = isolated_store / "judgments" / "keyword" / "alpaca" / "advbench.jsonl"
    lines = path.read_text().splitlines()
    lines[0] = (
        lines[0].replace('"label":"refusal"', '"label":"unknown"').replace('"safe":true', '"safe":null')
    )
    path.write_text("\n".join(lines) + "\n")
    _, tables = compute(store)
    row = next(r for r in tables[0].rows if r["model"] == "alpaca" and r["metric"] == "safety")
    assert (row["n"], row["hits"], row["unknown"]) == (9, 1, 1)


def test_report_writes_tables_figures_and_html(store, tmp_path):
    out = tmp_path / "figs"
    result = report(store, out, compare=("alpaca", "alpaca-350"))
    with open(out / "scores.csv") as fh:
        assert len(list(csv.DictReader(fh))) == len(GOLDEN)
    names = {p.name for p in result.figures}
    for stem in ("conservativeness_safe", "safety_advbench", "safety_vs_conservativeness"):
        assert f"{stem}.png" in names and f"{stem}.svg" in names
        assert (out / f"{stem}.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        assert b"<svg" in (out / f"{stem}.svg").read_bytes()[:2000]
    page = (out / "index.html").read_text()
    assert "data:image/png;base64," in page and 'src="http' not in page
    for table in result.tables:
        assert table.title in page
        for row in table.rows:
            assert row["model" if "model" in row else "eval_set"] in page
    md = (out / "scores.md").read_text()
    assert all(t.title in md for t in result.tables)


def test_mcnemar_compare(store):
    _, tables = compute(store, compare=("alpaca", "alpaca-350"))
    rows = {r["eval_set"]: r for r in tables[-1].rows}
    adv = rows["advbench"]
    assert (adv["n_pairs"], adv["a_only"], adv["b_only"]) == (10, 0, 6)
    assert adv["p_value"] == pytest.approx(2 / 64)
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(3, 3) == 1.0


def test_empty_store_is_an_error(isolated_store):
    with pytest.raises(SaftoolError, match="no judgments"):
        compute(Store(isolated_store))


def test_wilson_bounds_never_cross_the_score_at_the_extremes():
    import duckdb

    from saftool.report.sql import _wilson

    con = duckdb.connect()
    for k, n in [(0, 1), (0, 200), (200, 200), (939, 939), (7, 7), (1, 3)]:
        score, low, high = con.execute(f"SELECT {_wilson(str(k), str(n))}").fetchone()
        assert low <= score <= high, (k, n, low, score, high)
        assert 0 <= low and high <= 100 + 1e-9
