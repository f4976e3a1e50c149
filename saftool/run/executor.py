"""Running a plan: which stages are finished, and the one small interface every engine implements.

An executor gets the stages still to run (each with its argv, resources and dependencies among
them) in `submit`, reports each as it ends from `wait`, and stops what is left in `cancel`. One
whose stages outlive the `run` process (`detaches`: SLURM jobs) can be found again from another
shell (`attach`), to follow (`wait`), list (`status`) or stop (`cancel`) them; the others (local
worker processes, Ray tasks owned by `run`) say so when asked to. They are three classes
(`saftool.run.local`, `.slurm`, `.ray`), chosen by name from `EXECUTORS`; nothing here or in the
CLI knows any of them.

A finished stage leaves one file, `store/runs/NAME.done/STAGE.json` (its key), written atomically
by whoever saw it end: jobs that end at the same moment on different nodes write different files,
so they never race over one state file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol

from saftool import console
from saftool.errors import MissingDependencyError, SaftoolError, UsageError
from saftool.hashing import config_hash
from saftool.io import write_json
from saftool.registry import Registry
from saftool.run.plan import RunConfig, Stage, plan
from saftool.store import Store

EXECUTORS = Registry(
    "executor",
    {
        "local": "saftool.run.local:LocalExecutor",
        "slurm": "saftool.run.slurm:SlurmExecutor",
        "ray": "saftool.run.ray:RayExecutor",
    },
    requires={"ray": ("ray", "ray")},
)
DEFAULT_EXECUTOR = "local"


STORE_UNSEEN = 3  # the exit code of a stage whose job or task does not see the store


def store_unseen(store: Store) -> str:
    return (
        f"it could not see the store {store.root.resolve()}: the store must be on a filesystem that "
        "every node shares (and the same path on each)"
    )


@dataclass
class Outcome:
    """How one submitted stage ended."""

    stage: Stage
    code: int | None  # its exit code; None when it never ran (a stage it depends on failed)
    state: str = ""  # the engine's word for it, e.g. SLURM's FAILED or TIMEOUT

    @property
    def ok(self) -> bool:
        return self.code == 0


@dataclass
class ExecutorOptions:
    jobs: int | None = None  # local: stages at once
    runner: Callable[[list[str]], int] | None = None  # local: runs `saftool` argv in this process


class Executor(Protocol):
    """Submit, wait and cancel, which every engine has; attach and status, which only one that
    `detaches` has (the functions below ask that first). An engine subclasses it."""

    # its stages run on after `run` returns (SLURM jobs), so `run` need not wait and can attach later
    detaches: ClassVar[bool] = False
    # it runs stages `jobs` at once on this machine (`--jobs`)
    takes_jobs: ClassVar[bool] = False

    def __init__(self, config: RunConfig, store: Store, options: ExecutorOptions | None = None): ...

    def submit(self, stages: list[Stage]) -> None:
        """Start (or queue) `stages`, in plan order; a stage's deps are finished or in `stages`."""

    def wait(self) -> Iterator[Outcome]:
        """Each submitted stage's outcome as it ends, until none is left running."""

    def cancel(self) -> str | None:
        """Stop every submitted stage that has not ended; what was done, for a person (or None)."""

    @classmethod
    def attach(cls, config: RunConfig, store: Store) -> tuple[Executor, list[Stage]]:
        """Only if it `detaches`: the engine of the grid submitted earlier, from any shell, and the
        stages it submitted."""
        ...

    def status(self) -> list[str]:
        """Only if it `detaches`, once attached: one line per stage of the plan (stage, job, state,
        log; tab-separated)."""
        ...


def executors_that(capability: str) -> list[str]:
    """The names of the executors with `capability` set, among those whose packages are installed."""
    names = []
    for name in EXECUTORS.names():
        try:
            if getattr(EXECUTORS.load(name), capability):
                names.append(name)
        except MissingDependencyError:
            continue
    return names


def submission_path(store: Store, config: RunConfig) -> Path:
    """store/runs/NAME.jobs.json: which engine submitted the grid's stages, and their job ids."""
    return runs_file(store, config, ".jobs.json")


def read_submission(store: Store, config: RunConfig) -> dict:
    path = submission_path(store, config)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        how = " or ".join(f"`saftool run CONFIG --executor {name}`" for name in executors_that("detaches"))
        raise UsageError(f"grid {config.name!r} was never submitted: no {path}; submit it with {how}") from None


def open_executor(name: str | None, config: RunConfig, store: Store, options: ExecutorOptions) -> Executor:
    """The engine `name` (default: local) for a new submission; options it does not take are an error."""
    name = name or DEFAULT_EXECUTOR
    engine = EXECUTORS.load(name)
    if options.jobs is not None and not engine.takes_jobs:
        raise UsageError(f"--jobs is for --executor {' or '.join(executors_that('takes_jobs'))}; "
                         f"{name} runs what its resources allow")  # fmt: skip
    return engine(config, store, options)


def attach(name: str | None, config: RunConfig, store: Store) -> tuple[Executor, list[Stage]]:
    """The engine of a grid submitted earlier and its submitted stages; `name` None: the engine that
    submitted it, as its submission record says."""
    name = name or read_submission(store, config).get("executor", DEFAULT_EXECUTOR)
    engine = EXECUTORS.load(name)
    if not engine.detaches:
        raise UsageError(
            f"--status and --cancel are for --executor {' or '.join(executors_that('detaches'))}; "
            f"{name}'s stages end with `run`"
        )
    return engine.attach(config, store)


def reattach(name: str | None, config: RunConfig, store: Store) -> RunSummary:
    """`run --wait` alone: follow a grid submitted earlier, from any shell, to its end."""
    executor, stages = attach(name, config, store)
    summary = RunSummary(report=Path(config.output) / "index.html")
    return follow(config, store, executor, stages, summary, total=len(plan(config, store)))


def cancel_submitted(name: str | None, config: RunConfig, store: Store) -> None:
    executor, _ = attach(name, config, store)
    done = executor.cancel()
    console.info(f"cancelled grid {config.name!r}" + (f": {done}" if done else ""))


@dataclass
class RunSummary:
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    submitted: list[str] = field(default_factory=list)
    report: Path | None = None


def runs_file(store: Store, config: RunConfig, suffix: str) -> Path:
    """store/runs/NAME<suffix>: the grid's config, job ids, logs and finished records."""
    return store.runs / f"{config.name}{suffix}"


def log_path(store: Store, config: RunConfig, stage: Stage) -> Path:
    """Where a stage run outside the `run` process writes its messages."""
    return runs_file(store, config, ".logs") / f"{stage.file_stem}.log"


def done_path(store: Store, config: RunConfig, stage: Stage) -> Path:
    return runs_file(store, config, ".done") / f"{stage.file_stem}.json"


def saftool_argv(root: str, stage: Stage, resume: bool = True) -> list[str]:
    """The stage's command line after `saftool`, with `--resume` for a train stage.

    SLURM and Ray always pass it (a requeued job or retried task continues from its checkpoint, and
    `train --resume` without one just starts); the local executor passes it when a checkpoint exists.
    """
    argv = ["--store", root, *stage.argv]
    return [*argv, "--resume"] if resume and stage.kind == "train" else argv


def done_record(stage: Stage) -> dict[str, str]:
    return {"stage": stage.id, "key": stage.key}


def record_done(store: Store, config: RunConfig, stage: Stage) -> None:
    write_json(done_record(stage), done_path(store, config, stage))


def finished_keys(store: Store, config: RunConfig, stages: list[Stage]) -> dict[str, str]:
    """The key each stage last finished under (absent: never finished)."""
    keys: dict[str, str] = {}
    for stage in stages:
        try:
            keys[stage.id] = json.loads(done_path(store, config, stage).read_text(encoding="utf-8"))["key"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a damaged record only costs re-checking the stage; each stage resumes itself
    return keys


def stages_to_run(stages: list[Stage], done: dict[str, str]) -> list[Stage]:
    """Stages not finished under their key with their outputs present, and every stage after one."""
    todo: list[Stage] = []
    again: set[str] = set()
    for stage in stages:
        finished = done.get(stage.id) == stage.key and all(p.exists() for p in stage.outputs)
        if not finished or any(dep in again for dep in stage.deps):  # fresh inputs: redo
            todo.append(stage)
            again.add(stage.id)
    return todo


def log_tail(log: Path, lines: int = 15) -> str:
    try:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "".join(f"\n  | {line}" for line in tail)


def execute(config: RunConfig, store: Store, executor: Executor, *, wait: bool = True) -> RunSummary:
    """Submit every stage not already done to `executor`; with `wait`, follow them to the end."""
    stages = plan(config, store)
    todo = stages_to_run(stages, finished_keys(store, config, stages))
    summary = RunSummary(skipped=[s.id for s in stages if s not in todo], report=Path(config.output) / "index.html")
    store.runs.mkdir(parents=True, exist_ok=True)
    write_json({"config": config.model_dump(mode="json"), "config_hash": config_hash(config)},
               runs_file(store, config, ".config.json"))
    for stage in todo:  # they run again: a record from before must not stand for this run
        done_path(store, config, stage).unlink(missing_ok=True)
    if todo:
        executor.submit(todo)
    summary.submitted = [s.id for s in todo]
    if wait:
        follow(config, store, executor, todo, summary, total=len(stages))
    return summary


def follow(
    config: RunConfig, store: Store, executor: Executor, todo: list[Stage], summary: RunSummary, total: int
) -> RunSummary:
    """Record each stage that ends well; at the end, raise naming the first that failed and its log."""
    started = time.monotonic()
    failed: list[Outcome] = []
    with console.progress(f"run {config.name}", sum(s.weight for s in todo) or None) as bar:
        for outcome in executor.wait():
            if outcome.ok:
                record_done(store, config, outcome.stage)
                summary.ran.append(outcome.stage.id)
            else:
                failed.append(outcome)
            bar.advance(outcome.stage.weight)
    if failed:
        raise SaftoolError(failure_message(config, store, todo, summary, failed))
    console.info(
        f"run {config.name}: {len(summary.ran)} stages ran, {total - len(todo)} already done, "
        f"{time.monotonic() - started:.0f}s; report: {summary.report}"
    )
    return summary


def failure_message(
    config: RunConfig, store: Store, todo: list[Stage], summary: RunSummary, failed: list[Outcome]
) -> str:
    first = next((o for o in failed if o.code is not None), failed[0])
    how = f"exit {first.code}" if first.code is not None else "it never ran"
    if first.state:
        how = f"{first.state}, {how}"
    where = ""
    log = log_path(store, config, first.stage)
    if log.exists():
        where = f"; its log, {log}, ends:{log_tail(log)}"
    ended = set(summary.ran) | {o.stage.id for o in failed if o.code is not None}
    not_run = [s.id for s in todo if s.id not in ended]
    left = f"; not run: {', '.join(not_run)}" if not_run else ""
    return f"stage {first.stage.id} failed ({how}){left}; rerun `saftool run` to continue from it{where}"
