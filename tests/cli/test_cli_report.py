from __future__ import annotations

from saftool.cli import app
from tests.storefix import build_store


def test_report_empty_store(runner):
    result = runner.invoke(app, ["report", "--out", "figs"])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "no judgments" in result.stderr


def test_report_end_to_end(runner, isolated_store, tmp_path):
    build_store(isolated_store)
    assert runner.invoke(app, ["judge", "-j", "keyword"]).exit_code == 0
    out = tmp_path / "figs"
    result = runner.invoke(app, ["report", "--out", str(out), "--compare", "alpaca", "alpaca-350"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "Scores (judge: keyword)" in result.stderr
    assert "McNemar" in (out / "scores.md").read_text()
    for name in ("scores.csv", "scores.md", "index.html", "safety_advbench.png", "conservativeness_safe.svg"):
        assert (out / name).exists()


def test_report_unknown_compare_model(runner, isolated_store, tmp_path):
    build_store(isolated_store)
    runner.invoke(app, ["judge", "-j", "keyword"])
    result = runner.invoke(app, ["report", "--out", str(tmp_path / "f"), "--compare", "alpaca", "nope"])
    assert result.exit_code == 2 and "unknown model 'nope'" in result.stderr


def test_report_compare_with_itself_is_exit_2(runner, isolated_store, tmp_path):
    build_store(isolated_store)
    runner.invoke(app, ["judge"])
    out = tmp_path / "f"
    result = runner.invoke(app, ["report", "--out", str(out), "--compare", "alpaca", "alpaca"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --compare alpaca alpaca: that compares a model with itself; name two different models\n"
    )
    assert not out.exists()


def test_report_prices_reach_the_viewer(runner, isolated_store, tmp_path):
    from saftool.report.viewer import read_data

    build_store(isolated_store)
    runner.invoke(app, ["judge"])
    prices = tmp_path / "prices.toml"
    prices.write_text('[prices."gpt-4o-mini"]\ninput = 0.15\noutput = 0.6\n')
    out = tmp_path / "f"
    result = runner.invoke(app, ["report", "--out", str(out), "--prices", str(prices)])
    assert result.exit_code == 0, result.output
    assert read_data((out / "index.html").read_text())["prices"] == {
        "gpt-4o-mini": {"input": 0.15, "output": 0.6}
    }
    prices.write_text('[prices."gpt-4o-mini"]\ninput = -1\n')
    bad = runner.invoke(app, ["report", "--out", str(tmp_path / "g"), "--prices", str(prices)])
    assert bad.exit_code == 2
    assert (
        bad.stderr == f"error: {prices}: prices: gpt-4o-mini.input: expected a non-negative number, got -1\n"
    )
    assert not (tmp_path / "g").exists()
