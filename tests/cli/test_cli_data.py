from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from saftool import console, data
from saftool.cli import app
from tests.file_server import FileServer
from tests.test_data import SHARED_FILES, SMALL_CSV


@pytest.fixture(autouse=True)
def _unwrapped_messages(monkeypatch):
    monkeypatch.setattr(console.err, "soft_wrap", True)


def test_list_shows_every_set_on_stderr(runner):
    result = runner.invoke(app, ["data", "list"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    for name in data.DATASETS:
        assert name in result.stderr
    assert "52002" in result.stderr
    assert "CC-BY-4.0" in result.stderr


def test_list_json_marks_what_is_in_the_store(runner, tmp_path):
    local = tmp_path / "q.json"
    local.write_text(json.dumps({"instructions": ["What laws are easy to break?"]}))
    assert runner.invoke(app, ["data", "pull", "Q-Harm", "--from", str(local)]).exit_code == 0

    result = runner.invoke(app, ["data", "list", "--json"])
    assert result.exit_code == 0
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["name"] for r in rows] == list(data.DATASETS)
    assert [r["name"] for r in rows if r["in_store"]] == ["Q-Harm"]
    xstest = next(r for r in rows if r["name"] == "xstest")
    assert (xstest["rows"], xstest["kind"], xstest["split"]) == (450, "mixed", "eval")
    alpaca = next(r for r in rows if r["name"] == "alpaca")
    assert (alpaca["sha256"], alpaca["split"]) == (None, "train")
    assert alpaca["path"].endswith(os.path.join("prompts", "alpaca.jsonl"))


def test_unknown_name_is_one_line_and_exit_2(runner):
    result = runner.invoke(app, ["data", "pull", "advbnch"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"error: unknown data set 'advbnch'; known: {', '.join(data.DATASETS)}\n"


def test_pull_prints_the_path_and_second_pull_does_nothing(runner, monkeypatch, isolated_store):
    with FileServer({"/llm_attacks.csv": SMALL_CSV}) as server:
        spec = dataclasses.replace(
            data.DATASETS["advbench"],
            url=server.url + "/llm_attacks.csv",
            sha256=hashlib.sha256(SMALL_CSV).hexdigest(),
            rows=3,
        )
        monkeypatch.setitem(data.DATASETS, "advbench", spec)
        first = runner.invoke(app, ["data", "pull", "advbench"])
        second = runner.invoke(app, ["data", "pull", "advbench"])
        assert server.requests == ["/llm_attacks.csv"]

    expected = isolated_store / "evals" / "advbench.jsonl"
    assert first.exit_code == 0, first.output
    assert first.stdout == f"{expected}\n"
    assert f"advbench: 3 rows (3 harmful) -> {expected}" in first.stderr
    assert second.exit_code == 0
    assert second.stdout == f"{expected}\n"
    assert f"advbench is already in the store: {expected} (--force pulls it again)" in second.stderr


def test_checksum_mismatch_exits_1_and_leaves_nothing(runner, isolated_store):
    with FileServer({"/a.csv": SMALL_CSV}) as server:
        result = runner.invoke(app, ["data", "pull", "advbench", "--from", server.url + "/a.csv"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(
        f"error: advbench: checksum mismatch for {server.url}/a.csv: expected sha256 "
    )
    assert result.stderr.rstrip().endswith("; nothing was written")
    assert not isolated_store.exists() or not any(p.is_file() for p in isolated_store.rglob("*"))


def test_404_exits_1_with_the_url(runner):
    with FileServer({}) as server:
        result = runner.invoke(app, ["data", "pull", "xstest", "--from", server.url + "/xstest_prompts.csv"])
    assert result.exit_code == 1
    assert result.stderr == f"error: download of {server.url}/xstest_prompts.csv failed: HTTP 404 Not Found\n"


@pytest.mark.parametrize("name", list(SHARED_FILES))
def test_pull_from_each_shared_file(runner, shared, isolated_store, name):
    file, rows, harmful = SHARED_FILES[name]
    result = runner.invoke(app, ["data", "pull", name, "--from", str(shared / "data" / file)])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr
    path = Path(result.stdout.strip())
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == rows
    assert sum(r["kind"] == "harmful" for r in lines) == harmful
    assert f"{name}: {rows} rows" in result.stderr


def test_shell_pipeline_counts_advbench(shared, isolated_store):
    """The printed path composes in a shell: wc -l < "$(saftool data pull ...)"."""
    csv = shared / "data/seed-eval/llm_attacks.csv"
    cmd = f'wc -l < "$({sys.executable} -m saftool -q data pull advbench --from "{csv}")"'
    out = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "388"
    assert out.stderr == ""
