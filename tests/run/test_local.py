"""The local executor: skip rules, resuming after a failure, worker processes, their logs."""

from __future__ import annotations

import json
import os

import pytest

from saftool import run
from saftool.errors import SaftoolError, UsageError
from saftool.run import local
from saftool.store import Store


def _execute(cfg, store, runner=None, jobs=1):
    return run.execute(cfg, store, run.LocalExecutor(cfg, store, run.ExecutorOptions(jobs=jobs, runner=runner)))


def _finished(store, cfg):
    return {json.loads(p.read_text())["stage"] for p in (store.runs / f"{cfg.name}.done").glob("*.json")}


class _RecordingRunner:
    """Stands in for the CLI to test orchestration alone: records argv, creates each stage's outputs."""

    def __init__(self, stages, fail_on=None):
        self.by_argv = {tuple(s.argv): s for s in stages}
        self.calls = []
        self.fail_on = fail_on

    def __call__(self, argv):
        stage = self.by_argv[tuple(argv[2:]) if argv[2:][-1] != "--resume" else tuple(argv[2:-1])]
        self.calls.append(stage.id)
        if stage.id == self.fail_on:
            return 1
        for path in stage.outputs:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}\n")
        return 0


def test_rerun_skips_finished_stages_and_resumes_after_failure(isolated_store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = Store()
    cfg = run.smoke(run.load_config(None))
    stages = run.plan(cfg, store)
    failing = _RecordingRunner(stages, fail_on="train:harm10")
    with pytest.raises(SaftoolError, match="stage train:harm10 failed"):
        _execute(cfg, store, failing)
    before = failing.calls.index("train:harm10")

    resumed = _RecordingRunner(stages)
    summary = _execute(cfg, store, resumed)
    assert resumed.calls[0] == "train:harm10"  # nothing before the failure runs again
    assert set(summary.skipped) == set(failing.calls[:before])
    assert len(summary.ran) + len(summary.skipped) == len(stages)

    again = _RecordingRunner(stages)
    summary = _execute(cfg, store, again)
    assert again.calls == [] and summary.ran == []
    assert _finished(store, cfg) == {s.id for s in stages}  # one record per finished stage

    # a lost output makes its stage run again, even with a matching key, and what depends on it
    store.responses_path("harm10", "heldout-harmful").unlink()
    again = _RecordingRunner(stages)
    _execute(cfg, store, again)
    assert again.calls == ["infer:harm10", "judge", "report"]


def test_default_jobs_one_per_core_for_tool_built_models_and_small_packaged_bases_on_a_cpu(monkeypatch):
    tiny = run.RunConfig(train={"preset": "tiny"})
    default = run.load_config(None)  # SmolLM2-135M, packaged
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(local.os, "cpu_count", lambda: 2)
    assert run.default_jobs(tiny) == 2 and run.default_jobs(default) == 2
    monkeypatch.setattr(local.os, "cpu_count", lambda: 64)
    assert run.default_jobs(tiny) == 7 and run.default_jobs(default) == 7  # never more than one per model
    # a base of unknown size, or a large one, keeps one job: each job would hold its own copy
    assert run.default_jobs(run.RunConfig(train={"preset": "llama2-7b-qlora"})) == 1
    assert run.default_jobs(run.RunConfig(train={"base_model": "meta-llama/Llama-2-7b-hf"})) == 1
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert run.default_jobs(default) == 1  # on a GPU a real base wants the whole device
    assert run.default_jobs(tiny) == 7
    # told to train on the CPU (a flag train receives), the small base shares the cores again
    assert run.default_jobs(run.RunConfig(train={"extra_args": ["--device", "cpu"]})) == 7


def test_jobs_must_be_positive(isolated_store):
    cfg = run.smoke(run.load_config(None))
    with pytest.raises(UsageError, match="at least 1"):
        _execute(cfg, Store(), jobs=0)


def test_parallel_stage_failure_names_its_log_and_stops_the_rest(isolated_store, tmp_path, monkeypatch):
    """With --jobs, a stage that fails in its subprocess stops the run with the end of its log."""
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "no-such-alpaca.json"
    cfg = run.RunConfig(
        base={"source": str(missing)},
        gen={"n": 10, "diverse": False, "n_eval_harmful": 4, "n_eval_benign": 4},
        mixes=[{"n_harm": 0}, {"n_harm": 10}],
        train={"preset": "smoke"},
        evals=[run.HELDOUT_HARMFUL],
    )
    store = Store()
    with pytest.raises(SaftoolError, match=r"stage mix:\w+ failed \(exit \d\)") as failure:
        _execute(cfg, store, jobs=2)
    message = str(failure.value)
    assert str(missing) in message  # the child's own error, read from its log
    assert ".logs" in message
    assert _finished(store, cfg) <= {"gen:harmful-train", "gen:heldout-harmful", "gen:heldout-benign", "mix:alpaca", "mix:harm10"}
    assert not any(store.models.glob("*/train_run.json"))




def test_a_stage_that_loads_a_real_model_runs_in_a_process_of_its_own(isolated_store, tmp_path, monkeypatch):
    """Such a stage never runs in `run`'s process (or a reused worker): its GPU memory goes when it exits."""
    from saftool.cli.run import run_stage

    monkeypatch.chdir(tmp_path)
    cfg = run.RunConfig(gen={"n": 4, "diverse": False, "n_eval_harmful": 4, "n_eval_benign": 4}, mixes=[{"n_harm": 0}])
    store = Store()
    gens = [s for s in run.plan(cfg, store) if s.kind == "gen"]
    gens[1].own_process = True  # as the plan marks train/infer of a real base (tests/run/test_plan.py)
    in_process = []

    def runner(argv):
        in_process.append(argv)
        return run_stage(argv)

    executor = run.LocalExecutor(cfg, store, run.ExecutorOptions(jobs=1, runner=runner))
    executor.submit(gens)
    assert [o.code for o in executor.wait()] == [0] * len(gens)
    assert [a[2:] for a in in_process] == [s.argv for s in gens if not s.own_process]
    assert all(path.exists() for s in gens for path in s.outputs)
    # its messages went to its own log; the in-process stages' to this process's stderr
    assert "wrote 4 harmful records to" in run.log_path(store, cfg, gens[1]).read_text()
    assert not run.log_path(store, cfg, gens[0]).exists()


def test_real_model_stages_get_their_share_of_the_cores_even_alone(isolated_store, tmp_path, monkeypatch):
    """Each own-process stage's torch threads (OMP_NUM_THREADS) are the cores shared out among the
    jobs, whether or not another stage runs beside it (bf16 answers depend on the thread count);
    with one job it keeps torch's default."""
    import subprocess

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(local.os, "cpu_count", lambda: 2)
    cfg = run.RunConfig(gen={"n": 4, "diverse": False, "n_eval_harmful": 4, "n_eval_benign": 4}, mixes=[{"n_harm": 0}])
    store = Store()
    gens = [s for s in run.plan(cfg, store) if s.kind == "gen"][:3]
    for stage in gens:
        stage.own_process = True
    threads = []
    real_popen = subprocess.Popen

    def popen(argv, **kwargs):
        threads.append(kwargs["env"].get("OMP_NUM_THREADS"))
        return real_popen(argv, **kwargs)

    monkeypatch.setattr(local.subprocess, "Popen", popen)
    executor = run.LocalExecutor(cfg, store, run.ExecutorOptions(jobs=2))
    executor.submit(gens[:2])
    assert [o.code for o in executor.wait()] == [0, 0]
    executor.submit(gens[2:])  # alone
    assert [o.code for o in executor.wait()] == [0]
    assert threads == ["1", "1", "1"]
    executor = run.LocalExecutor(cfg, store, run.ExecutorOptions(jobs=1))
    executor.submit(gens[2:])
    assert [o.code for o in executor.wait()] == [0]
    assert threads[-1] == os.environ.get("OMP_NUM_THREADS")


def test_next_stage_is_plan_order_with_one_job_and_costliest_first_with_more(isolated_store):
    """Two jobs start the grid's trainings before any model's answers, which would leave the last
    training alone at the end; one job keeps --dry-run's order."""
    cfg = run.smoke(run.load_config(None))
    stages = run.plan(cfg, Store())
    submitted = {s.id for s in stages}
    cost = local.path_costs(stages)

    def order(jobs: int) -> list[str]:
        pending, ended, started = list(stages), set(), []
        while stage := local.next_stage(pending, ended, submitted, jobs, cost):
            pending.remove(stage)
            started.append(stage.id)
            ended.add(stage.id)  # it ends before the next starts: the order of choice is what counts
        return started

    assert order(1) == [s.id for s in stages]
    kinds = [i.partition(":")[0] for i in order(2)]
    assert kinds.index("infer", kinds.index("train")) > max(k for k, kind in enumerate(kinds) if kind == "train")
    assert sorted(order(2)) == sorted(submitted)
