"""`saftool run` end to end on the smoke preset: real gen, mix, train, infer, judge and report."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from saftool.cli import app
from tests.run import grids

pytestmark = pytest.mark.slow

MODELS = ["alpaca", "harm10", "harm10-short", "harm10-long", "harm20", "harm20-short", "harm20-long"]


def test_smoke_grid_end_to_end_then_rerun_skips_everything(runner, isolated_store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["run", "--preset", "smoke", "--jobs", "2"])
    assert result.exit_code == 0, result.output
    assert "28 stages ran, 0 already done" in result.stderr
    # two worker processes ran the stages, each stage's messages in its own log
    logs = {p.stem for p in (isolated_store / "runs" / "study.logs").glob("*.log")}
    assert len(logs) == 28 and {"train-harm10", "infer-harm20-long", "judge", "report"} <= logs
    assert result.stdout == ""  # stdout is for records; a run has none

    report = tmp_path / "figs"
    html = (report / "index.html").read_text()
    for model in MODELS:
        assert model in html
    with open(report / "scores.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_metric = {(r["model"], r["eval_set"], r["metric"]) for r in rows}
    for model in MODELS:
        assert (model, "heldout-harmful", "safety") in by_metric
        assert (model, "heldout-benign", "conservativeness") in by_metric
        assert (model, "heldout-benign", "helpfulness") in by_metric
    # the report lists models in the order of the experiment, not alphabetically
    order = list(dict.fromkeys(r["model"] for r in rows if r["metric"] == "safety"))
    assert order == MODELS
    for model in MODELS:
        run_record = json.loads((isolated_store / "models" / model / "train_run.json").read_text())
        assert run_record["preset"] == "smoke" and run_record["completed"]

    again = runner.invoke(app, ["run", "--preset", "smoke", "--jobs", "1"])
    assert again.exit_code == 0, again.output
    assert "0 stages ran, 28 already done" in again.stderr


def test_dry_run_lines_run_in_a_shell_give_the_same_store(runner, local_grid, tmp_path, monkeypatch):
    """The printed plan, run line by line in a shell, leaves the store `run` itself leaves."""
    scripted = tmp_path / "scripted"
    scripted.mkdir()
    config = grids.write_config(scripted)
    monkeypatch.chdir(scripted)
    plan = runner.invoke(app, ["--store", str(scripted / "store"), "run", str(config), "--dry-run"])
    assert plan.exit_code == 0, plan.output
    lines = plan.stdout.splitlines()
    assert len(lines) == 4 + 2 * 3 + 2
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for line in lines:
        subprocess.run(["bash", "-c", line], cwd=scripted, env=env, check=True, capture_output=True)

    assert grids.snapshot(local_grid / "store") == grids.snapshot(scripted / "store")
    assert (local_grid / "report" / "scores.csv").read_text() == (scripted / "report" / "scores.csv").read_text()


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; workers follow their parent on Linux")
def test_parallel_run_killed_outright_resumes_without_duplicates(runner, isolated_store, tmp_path, monkeypatch):
    import signal
    import time

    monkeypatch.chdir(tmp_path)
    done = isolated_store / "runs" / "study.done"
    env = {**os.environ, "SAFTOOL_STORE": str(isolated_store), "SAFTOOL_NO_PROGRESS": "1"}
    parent = subprocess.Popen([sys.executable, "-m", "saftool", "run", "--preset", "smoke", "--jobs", "2"],
                              cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not any(done.glob("train-*.json")):
        assert parent.poll() is None, parent.stderr.read().decode()
        assert time.monotonic() < deadline, "no model trained in time"
        time.sleep(0.2)
    workers = _children(parent.pid)
    parent.send_signal(signal.SIGKILL)  # no handler, no finally: a stage may be cut anywhere
    parent.wait()
    deadline = time.monotonic() + 20
    while any(_alive(w) for w in workers):  # the workers follow (next test), before the rerun starts
        assert time.monotonic() < deadline, "a worker outlived the killed run"
        time.sleep(0.2)

    result = runner.invoke(app, ["run", "--preset", "smoke", "--jobs", "2"])
    assert result.exit_code == 0, result.output
    assert len(list(done.glob("*.json"))) == 28
    for path in (isolated_store / "responses").rglob("*.jsonl"):
        ids = [json.loads(line)["id"] for line in path.read_text().splitlines()]
        assert len(ids) == len(set(ids)), f"duplicate answers in {path}"
    for path in (isolated_store / "judgments").rglob("*.jsonl"):
        ids = [json.loads(line)["id"] for line in path.read_text().splitlines()]
        assert len(ids) == len(set(ids)), f"duplicate judgments in {path}"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_stop_mid_stage_when_run_is_killed(isolated_store, tmp_path):
    """A worker busy training stops with its killed parent, not when its stage would have ended."""
    import signal
    import time

    config = tmp_path / "long.toml"
    config.write_text(
        "[base]\nn = 200\n[gen]\nn = 20\ndiverse = false\nn_eval_harmful = 4\nn_eval_benign = 4\n"
        '[train]\npreset = "smoke"\nextra_args = ["--epochs", "200"]\n'
        "[[mixes]]\nn_harm = 0\n[[mixes]]\nn_harm = 20\n"
    )
    env = {**os.environ, "SAFTOOL_STORE": str(isolated_store), "SAFTOOL_NO_PROGRESS": "1"}
    parent = subprocess.Popen([sys.executable, "-m", "saftool", "run", str(config), "--jobs", "2"],
                              cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    # training has begun once a checkpoint folder holds its base model; 200 epochs take minutes
    while not any((isolated_store / "models").glob(".*.ckpt/base/config.json")):
        assert parent.poll() is None, parent.stderr.read().decode()
        assert time.monotonic() < deadline, "training never started"
        time.sleep(0.2)
    workers = _children(parent.pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers):
        assert time.monotonic() < deadline, "a worker kept training after run was killed"
        time.sleep(0.2)
    assert not any((isolated_store / "models").glob("*/train_run.json"))


def test_seeds_train_one_model_per_seed_recording_seed_and_mix(runner, isolated_store, tmp_path, monkeypatch):
    """Each seed's model is its own train run: same mix and config but the seed, different weights."""
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "seeds.toml"
    config.write_text(
        'seeds = [0, 1]\nevals = ["heldout-harmful"]\n'
        "[base]\nn = 60\n[gen]\nn = 10\ndiverse = false\nn_eval_harmful = 4\nn_eval_benign = 4\n"
        '[train]\npreset = "smoke"\nextra_args = ["--epochs", "1"]\n[infer]\nmax_new_tokens = 4\n'
        "[[mixes]]\nn_harm = 10\n"
    )
    result = runner.invoke(app, ["run", str(config), "--out", "seeded-report", "--jobs", "1"])
    assert result.exit_code == 0, result.output
    records = {
        seed: json.loads((isolated_store / "models" / f"harm10-s{seed}" / "train_run.json").read_text())
        for seed in (0, 1)
    }
    assert [records[s]["config"]["seed"] for s in (0, 1)] == [0, 1]
    assert {r["mix"] for r in records.values()} == {"harm10"}
    assert {k: v for k, v in records[0]["config"].items() if k != "seed"} == {
        k: v for k, v in records[1]["config"].items() if k != "seed"
    }
    assert records[0]["loss_curve"] != records[1]["loss_curve"]  # the seed reached init and data order
    for seed in (0, 1):
        assert (isolated_store / "responses" / f"harm10-s{seed}" / "heldout-harmful.jsonl").exists()
    assert (tmp_path / "seeded-report" / "index.html").exists()
