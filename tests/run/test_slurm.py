"""`run --executor slurm` against a real SLURM (scripts/slurm-local.sh starts a single-node one).

One small grid runs through the scheduler; the tests after the first change one stage of it (a bad
judge option, a longer training) so that only that stage and what depends on it is submitted again.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from datetime import datetime

import pytest

from saftool.cli import app
from tests.run import grids

HAS_SLURM = shutil.which("sbatch") is not None
needs_slurm = pytest.mark.skipif(not HAS_SLURM, reason="needs SLURM's sbatch on PATH (scripts/slurm-local.sh)")
STAGES = [
    "gen:harmful-train", "gen:heldout-harmful", "gen:heldout-benign", "gen:benign-train",
    *[f"{kind}:{m}" for kind in ("mix", "train", "infer") for m in grids.MODELS], "judge", "report",
]  # fmt: skip


def _job(job_id: str) -> dict[str, str]:
    shown = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, check=True)
    return dict(item.split("=", 1) for item in shown.stdout.split() if "=" in item)


def _jobs(folder) -> dict[str, dict[str, str]]:
    """Each stage of the last submission and what slurmctld says of its job."""
    record = json.loads((folder / "store" / "runs" / "small.jobs.json").read_text())
    return {stage: _job(entry["job"]) for stage, entry in record["stages"].items()}


def _queued(folder) -> list[str]:
    record = json.loads((folder / "store" / "runs" / "small.jobs.json").read_text())
    arrays = ",".join({entry["array"] for entry in record["stages"].values()})
    shown = subprocess.run(["squeue", "-h", "-r", "-j", arrays, "-o", "%i %T"], capture_output=True, text=True)
    return shown.stdout.split("\n") if shown.stdout.strip() else []


def _submit(folder, name: str, **config_args):
    """Queue the small grid with one stage changed (`grids.write_config` arguments); returns its config."""
    config = grids.write_config(folder, name, **config_args)
    submitted = grids.saftool("run", str(config), "--executor", "slurm", cwd=folder)  # returns once queued
    assert submitted.returncode == 0, submitted.stderr
    return config, submitted


@pytest.fixture(scope="module")
def slurm_grid(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slurm-grid")
    config = grids.write_config(folder)
    done = grids.saftool("run", str(config), "--executor", "slurm", "--wait", cwd=folder)
    assert done.returncode == 0, done.stderr
    return folder, done, _jobs(folder)


@pytest.mark.slow
@needs_slurm
def test_grid_on_slurm_completes_in_dependency_order_and_equals_a_local_run(slurm_grid, local_grid):
    folder, done, jobs = slurm_grid
    assert "12 stages ran, 0 already done" in done.stderr
    assert sorted(jobs) == sorted(STAGES)
    assert {stage: job["JobState"] for stage, job in jobs.items()} == dict.fromkeys(jobs, "COMPLETED")
    for model in grids.MODELS:
        trained = datetime.fromisoformat(jobs[f"train:{model}"]["EndTime"])
        assert datetime.fromisoformat(jobs[f"infer:{model}"]["StartTime"]) >= trained
    assert datetime.fromisoformat(jobs["report"]["StartTime"]) >= datetime.fromisoformat(jobs["judge"]["EndTime"])
    logs = folder / "store" / "runs" / "small.logs"
    assert {p.stem for p in logs.glob("*.log")} == {s.replace(":", "-") for s in STAGES}
    assert grids.snapshot(folder / "store") == grids.snapshot(local_grid / "store")
    assert (folder / "report" / "scores.csv").read_text() == (local_grid / "report" / "scores.csv").read_text()


@pytest.mark.slow
@needs_slurm
def test_failed_stage_cancels_its_dependents_and_status_and_wait_work_from_new_shells(slurm_grid):
    folder, _, _ = slurm_grid
    config, submitted = _submit(folder, "bad-judge.toml", judge_args=["--no-such-option"])
    assert "submitted 2 stages" in submitted.stderr  # only the judge changed: judge and report run again

    status = grids.saftool("run", str(config), "--status", cwd=folder)
    assert status.returncode == 0, status.stderr
    rows = {line.split("\t")[0]: line.split("\t") for line in status.stdout.splitlines()}
    assert sorted(rows) == sorted(STAGES)
    assert rows["train:alpaca"][1:3] == ["-", "done"]  # finished in the first submission
    assert rows["report"][2] in {"PENDING", "CANCELLED"} and rows["report"][3].endswith("small.logs/report.log")
    assert rows["report"][1].endswith("_0")

    waited = grids.saftool("run", str(config), "--wait", cwd=folder)
    assert waited.returncode == 1
    assert "stage judge failed (FAILED, exit 2); not run: report" in waited.stderr
    assert "small.logs/judge.log" in waited.stderr and "no-such-option" in waited.stderr
    jobs = _jobs(folder)
    assert jobs["judge"]["JobState"] == "FAILED"
    assert (jobs["report"]["JobState"], jobs["report"]["Reason"]) == ("CANCELLED", "DependencyNeverSatisfied")
    assert _queued(folder) == []


@pytest.mark.slow
@needs_slurm
def test_requeued_train_job_resumes_from_its_checkpoint_with_one_record_per_item(slurm_grid):
    folder, _, _ = slurm_grid
    config, _ = _submit(folder, "longer.toml", train_args=["--epochs", "8"])
    ckpt = folder / "store" / "models" / ".alpaca.ckpt"
    deadline = time.monotonic() + 240
    while not list(ckpt.glob("checkpoint-*/trainer_state.json")):
        assert time.monotonic() < deadline, "no checkpoint written in time"
        time.sleep(0.2)
    train_job = json.loads((folder / "store" / "runs" / "small.jobs.json").read_text())["stages"]["train:alpaca"]
    assert _job(train_job["job"])["JobState"] == "RUNNING"
    subprocess.run(["scontrol", "requeue", train_job["job"]], check=True, capture_output=True)

    waited = grids.saftool("run", str(config), "--wait", cwd=folder)
    assert waited.returncode == 0, waited.stderr
    job = _job(train_job["job"])
    assert (job["JobState"], job["Restarts"]) == ("COMPLETED", "1")
    log = (folder / "store" / "runs" / "small.logs" / "train-alpaca.log").read_text()
    assert "(restart 1)" in log and "resuming from checkpoint-" in log
    record = json.loads((folder / "store" / "models" / "alpaca" / "train_run.json").read_text())
    assert record["config"]["epochs"] == 8 and record["completed"]
    grids.one_record_per_item(folder / "store")


@pytest.mark.slow
@needs_slurm
def test_cancel_leaves_no_job_queued(slurm_grid):
    folder, _, _ = slurm_grid
    config, _ = _submit(folder, "cancelled.toml", train_args=["--epochs", "40"])
    assert _queued(folder)
    again = grids.saftool("run", str(config), "--executor", "slurm", cwd=folder)
    assert again.returncode == 2 and "is already submitted" in again.stderr
    cancelled = grids.saftool("run", str(config), "--cancel", cwd=folder)
    assert cancelled.returncode == 0, cancelled.stderr
    deadline = time.monotonic() + 30
    while _queued(folder):
        assert time.monotonic() < deadline, f"still queued: {_queued(folder)}"
        time.sleep(0.5)


# -- bad input: one line with SLURM's reason, exit 2, nothing submitted ----------------------------


def _refused(runner, tmp_path, monkeypatch, toml_extra: str):
    monkeypatch.chdir(tmp_path)
    config = grids.write_config(tmp_path)
    # appended: a table placed among the top-level keys would swallow the ones after it (evals)
    config.write_text(config.read_text() + toml_extra)
    result = runner.invoke(app, ["run", str(config), "--executor", "slurm"])
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "store" / "runs").exists()  # nothing written, nothing submitted
    return result.stderr.strip()


@needs_slurm
@pytest.mark.parametrize(
    ("toml", "line"),
    [
        (
            '[slurm]\npartition = "no-such-partition"\n',
            "error: sbatch refused the gen stages (--cpus-per-task=1 --partition=no-such-partition): "
            "Invalid partition name specified",
        ),
        (
            "[resources.train]\nmem_gb = 100000\n",
            "error: sbatch refused the train stages (--cpus-per-task=1 --mem=102400000M): "
            "Requested node configuration is not available",
        ),
    ],
)
def test_what_slurm_refuses_is_its_own_reason(runner, tmp_path, monkeypatch, toml, line):
    assert _refused(runner, tmp_path, monkeypatch, toml) == line


def test_no_sbatch_on_path(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    line = _refused(runner, tmp_path, monkeypatch, "")
    assert line.startswith("error: --executor slurm: sbatch is not on PATH")


@pytest.mark.parametrize("flag", ["--wait", "--cancel", "--status"])
def test_a_grid_never_submitted_says_so(runner, tmp_path, monkeypatch, flag):
    if not HAS_SLURM:
        monkeypatch.setattr(shutil, "which", lambda tool: f"/usr/bin/{tool}")  # the message comes before any call
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["run", str(grids.write_config(tmp_path)), flag])
    assert result.exit_code == 2, result.output
    assert "grid 'small' was never submitted: no " in result.stderr
    assert "submit it with `saftool run CONFIG --executor slurm`" in result.stderr


@pytest.mark.parametrize("flag", ["--cancel", "--status"])
def test_slurm_only_flags_are_refused_for_ray(runner, tmp_path, monkeypatch, flag):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["run", str(grids.write_config(tmp_path)), "--executor", "ray", flag])
    assert result.exit_code == 2, result.output
    assert "--status and --cancel are for --executor slurm; ray's stages end with `run`" in result.stderr


def test_a_job_that_cannot_see_the_store_stops_before_anything_runs(tmp_path):
    from saftool import run
    from saftool.run.executor import STORE_UNSEEN
    from saftool.run.slurm import stage_script
    from saftool.store import Store

    unseen = Store(tmp_path / "elsewhere" / "store")  # as on a node without the shared filesystem
    cfg = run.load_config(grids.write_config(tmp_path))
    stage = next(s for s in run.plan(cfg, unseen) if s.kind == "train")
    job = subprocess.run(["bash", "-c", stage_script(unseen, cfg, stage)], env={"SLURM_JOB_ID": "7"})
    assert job.returncode == STORE_UNSEEN
    assert not (tmp_path / "elsewhere").exists()
