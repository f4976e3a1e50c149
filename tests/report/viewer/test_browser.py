"""The viewer in a real headless Chromium (Debian's `chromium`, driven by Playwright), from file://:
no console errors, and what it draws matches what SQL says about the same store."""

from __future__ import annotations

import os
import shutil

import pytest

from saftool.report import compute, report
from saftool.sql import query
from saftool.store import Store
from tests.report.viewer.viewerfix import build_viewer_store

CHROMIUM = os.environ.get("SAFTOOL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra)")
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH (apt-get install chromium; .ci/run installs it)")
    with playwright.sync_playwright() as pw:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _open(browser, path):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    return page, errors


def _count(store, where: str) -> int:
    return query(store, f"SELECT count(*) FROM judgments WHERE judge.name = 'keyword' AND {where}")[1][0][0]


def test_viewer_in_chromium_matches_sql(browser, isolated_store, tmp_path):
    store = build_viewer_store(isolated_store)
    out = tmp_path / "figs"
    report(store, out)
    page, errors = _open(browser, out / "index.html")

    _, rows = query(store, "SELECT DISTINCT model FROM judgments ORDER BY model")
    assert sorted(
        page.eval_on_selector_all("#matrix-table tr[data-model]", "rs => rs.map(r => r.dataset.model)")
    ) == [r[0] for r in rows]
    _, tables = compute(store)
    if tables[0].note:  # which judge profile corrected the scores, or that none did
        assert page.text_content("#scores-note") == tables[0].note
    sets = page.eval_on_selector_all(
        "#matrix-table th[data-eval-set]", "hs => hs.map(h => h.dataset.evalSet)"
    )
    assert sorted(sets) == [
        r[0] for r in query(store, "SELECT DISTINCT eval_set FROM judgments ORDER BY 1")[1]
    ]

    # a click on a cell opens its answers; filters narrow them to what SQL counts
    page.click("td.cell[data-model='alpaca-350'][data-eval-set='advbench']")
    count = lambda: int(page.get_attribute("#answer-count", "data-count"))  # noqa: E731
    assert count() == _count(store, "model = 'alpaca-350' AND eval_set = 'advbench'") == 10
    assert page.locator("#answer-table tr.answer").count() == 10
    page.select_option("#f-label", "refusal")
    assert (
        count() == _count(store, "model = 'alpaca-350' AND eval_set = 'advbench' AND label = 'refusal'") == 8
    )
    page.select_option("#f-model", "")
    page.select_option("#f-label", "")
    page.select_option("#f-eval", "")
    page.select_option("#f-category", "privacy_violation")
    assert count() == _count(store, "category = 'privacy_violation'") > 0
    page.select_option("#f-category", "")
    shows = "n => document.getElementById('answer-count').dataset.count === String(n)"
    page.fill("#f-text", "GATHER")  # free text: case-insensitive, over prompt, answer and rationale
    page.wait_for_function(shows, arg=_count(store, "response ILIKE '%gather%'"))
    page.fill("#f-text", "")
    page.wait_for_function(shows, arg=80)
    assert page.locator("#answer-table tr.answer").count() == 50  # paged

    # the paired view's counts are the McNemar table's
    page.click("nav button[data-tab='compare']")
    page.select_option("#c-a", label="alpaca")
    page.select_option("#c-b", label="alpaca-350")
    _, tables = compute(store, compare=("alpaca", "alpaca-350"))
    for row in tables[-1].rows:
        shown = page.locator(f"#compare-table tr[data-eval-set='{row['eval_set']}']")
        for key in ("n_pairs", "a_only", "b_only", "both_ok", "neither"):
            assert int(shown.get_attribute(f"data-{key.replace('_', '-')}")) == row[key], key
    flips = sum(r["a_only"] + r["b_only"] for r in tables[-1].rows)
    assert page.locator("#flip-table tr.flip").count() == flips == 7
    page.select_option("#c-b", label="alpaca")
    assert "same model" in page.text_content("#compare-result")

    page.click("nav button[data-tab='judges']")
    assert page.locator("#judge-pairs tr[data-pair]").count() == 1
    assert page.locator("#split-table tr.split").count() > 0
    page.click("nav button[data-tab='training']")
    assert page.locator("#training .card[data-model='alpaca-350'] svg.loss polyline").count() == 1
    page.click("nav button[data-tab='usage']")
    assert "no price given" in page.text_content("#api-table")

    page.click("nav button[data-tab='scores']")
    shot = tmp_path / "viewer.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(b"\x89PNG")
    assert errors == []


def test_viewer_of_a_store_without_judgments_says_so(browser, isolated_store, tmp_path):
    from saftool.errors import SaftoolError

    with pytest.raises(SaftoolError):
        report(Store(isolated_store), tmp_path / "figs")
    page, errors = _open(browser, tmp_path / "figs" / "index.html")
    assert "no judgments" in page.text_content("#notice")
    assert "no judgments" in page.text_content("#matrix")
    assert errors == []


def test_seed_groups_in_chromium(browser, isolated_store, tmp_path):
    from tests.seedfix import build_seed_store

    store = build_seed_store(isolated_store)
    out = tmp_path / "figs"
    report(store, out)
    page, errors = _open(browser, out / "index.html")
    page.select_option("#seed-mode", "groups")
    assert page.eval_on_selector_all(
        "#matrix-table tr[data-model]", "rs => rs.map(r => r.dataset.model)"
    ) == [
        "alpaca",
        "harm700",
    ]
    cell = page.text_content("td.cell[data-model='harm700'][data-eval-set='heldout-harmful']")
    assert cell == "safety 80 [55.2, 100] 3 seeds"  # mean of 90, 70, 80; t-interval clipped at 100
    page.click("td.cell[data-model='harm700'][data-eval-set='heldout-harmful']")
    assert page.get_attribute("#answer-count", "data-count") == "30"

    # two groups are paired within each seed, as `report --compare alpaca harm700` pairs them
    page.click("nav button[data-tab='compare']")
    page.select_option("#c-a", "g:alpaca")
    page.select_option("#c-b", "g:harm700")
    _, tables = compute(store, compare=("alpaca", "harm700"))
    for row in tables[-1].rows:
        shown = page.locator(
            f"#compare-table tr[data-seed='{row['seed']}'][data-eval-set='{row['eval_set']}']"
        )
        assert int(shown.get_attribute("data-b-only")) == row["b_only"]
        assert int(shown.get_attribute("data-a-only")) == row["a_only"]
    page.select_option("#c-b", "m:alpaca-s1")
    assert "same model" in page.text_content("#compare-result")
    assert errors == []
