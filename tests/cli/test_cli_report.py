from __future__ import annotations

from saftool.cli import app
from tests.storefix import build_store


def test_report_empty_store(runner):
    result = runner.invoke(app, ["report", "--out", "figs"])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "no judgments" in result.stderr


def test_report_end_to_end(runner, isolated_store, tmp_path):
    build_store(isolated_store)
    assert runner.invoke(app, ["judge"]).exit_code == 0
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
    runner.invoke(app, ["judge"])
    result = runner.invoke(app, ["report", "--out", str(tmp_path / "f"), "--compare", "alpaca", "nope"])
    assert result.exit_code == 2 and "unknown model 'nope'" in result.stderr
