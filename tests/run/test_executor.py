"""The Executor interface: `saftool run` reaches every engine through it and the registry alone.

A stand-in engine whose stages outlive `run` (as SLURM's do) is registered under a name the CLI
has never heard of; submitting, `--status`, `--wait` and `--cancel` from a new invocation all reach
it, and an engine that cannot re-attach says so.
"""

from __future__ import annotations

import json

import pytest

from saftool.cli import app
from saftool.io import write_json
from saftool.run.executor import EXECUTORS, Executor, Outcome, read_submission, submission_path
from saftool.run.plan import plan
from tests.run import grids


class Detached(Executor):
    """Queues stages nowhere: `wait` reports each one finished, `cancel` says what it stopped."""

    detaches = True

    def __init__(self, config, store, options=None):
        self.config, self.store, self.stages = config, store, []

    def submit(self, stages):
        self.stages = list(stages)
        write_json({"executor": "detached", "stages": [s.id for s in stages]}, submission_path(self.store, self.config))

    def wait(self):
        for stage in self.stages:
            yield Outcome(stage, 0, "DONE")

    def cancel(self):
        return f"stopped {len(self.stages)} stages"

    @classmethod
    def attach(cls, config, store):
        engine = cls(config, store)
        ids = read_submission(store, config)["stages"]
        engine.stages = [s for s in plan(config, store) if s.id in ids]
        return engine, engine.stages

    def status(self):
        return [f"{stage.id}\tqueued" for stage in self.stages]


@pytest.fixture
def detached(monkeypatch, tmp_path):
    monkeypatch.setitem(EXECUTORS.entries, "detached", f"{__name__}:Detached")
    monkeypatch.chdir(tmp_path)
    return str(grids.write_config(tmp_path))


def test_a_detaching_engine_the_cli_never_named_is_submitted_to_followed_listed_and_cancelled(
    runner, detached, isolated_store
):
    submitted = runner.invoke(app, ["run", detached, "--executor", "detached"])
    assert submitted.exit_code == 0, submitted.output
    assert "follow it with `saftool run " in submitted.stderr  # it returned without waiting
    stages = json.loads((isolated_store / "runs" / "small.jobs.json").read_text())["stages"]
    assert len(stages) == 12

    status = runner.invoke(app, ["run", detached, "--status"])  # no --executor: the one that submitted it
    assert status.exit_code == 0, status.output
    assert status.stdout.splitlines() == [f"{sid}\tqueued" for sid in stages]

    cancelled = runner.invoke(app, ["run", detached, "--cancel"])
    assert cancelled.exit_code == 0 and "cancelled grid 'small': stopped 12 stages" in cancelled.stderr

    waited = runner.invoke(app, ["run", detached, "--wait"])
    assert waited.exit_code == 0, waited.output
    assert "run small: 12 stages ran" in waited.stderr


@pytest.mark.parametrize("flag", ["--status", "--cancel"])
def test_an_engine_that_cannot_attach_says_so(runner, detached, flag):
    result = runner.invoke(app, ["run", detached, "--executor", "local", flag])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: --status and --cancel are for --executor slurm or detached; local's stages end with `run`"
    )


def test_jobs_is_refused_for_an_engine_that_does_not_take_it(runner, detached):
    result = runner.invoke(app, ["run", detached, "--executor", "detached", "--jobs", "2"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: --jobs is for --executor local; detached runs what its resources allow"
