"""The local executor: stages on this machine, as soon as their inputs are done, `jobs` at once.

With one job, a stage runs in the `run` process itself (`runner(argv)`), in plan order. With more,
`jobs` worker processes (started once, so torch loads once per worker, not per stage) run the
commands in-process, the cores shared out between them, each stage's messages in a log under
`store/runs/NAME.logs/`. A stage that loads a real model (train or infer of a real base, an hf
judge) runs in a fresh process of its own whatever `jobs` is: a GPU keeps what a process allocated
until it exits, so each such stage starts with the whole device; on the CPU, with several jobs, it
gets its share of the cores. A failed stage stops the others (every stage resumes).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from saftool import console
from saftool.devices import yielding_cpu_threads
from saftool.errors import UsageError
from saftool.run.executor import Executor, ExecutorOptions, Outcome, log_path, saftool_argv
from saftool.run.plan import RunConfig, Stage
from saftool.store import Store

# a real base this small runs several stages at once on a CPU: each stage holds its own copy (float32
# weights and a bf16 one, about 6 bytes a parameter, ~0.8 GB for SmolLM2-135M)
SMALL_BASE_PARAMETERS = 1_000_000_000


def default_jobs(config: RunConfig) -> int:
    """Stages run at once when `--jobs` is not given: one per core, up to one per model, the cores
    shared out between them (`stage_threads`), where a stage's matrices are too small to use every
    core; else one.

    * A tool-built model (tiny, smoke) trains and answers on one CPU thread, since its matrices are
      too small to split (see `train.session.cpu_threads`).
    * A small packaged base (`pretrained.PRETRAINED`, such as the default SmolLM2-135M) that trains
      on the CPU (`[train]`'s device, settled as `train` settles it): a LoRA step ran 283 tokens/s
      on 1 thread and 303 on 2, and two 1-thread runs side by side 577 in all; bf16 greedy
      decoding 245 tokens/s on 1 thread and 395 on 2 (2-core box, idle, 2026-12-06). Two stages at
      once train 1.9x and answer 1.2x faster than one on both cores.
    * Any other real base model gets one job: it wants the whole GPU, or every core, to itself, and
      each job would hold its own copy of it.
    """
    cores, models = os.cpu_count() or 1, len(config.models())
    if config.tool_built_models or (_small_packaged_base(config) and not _trains_on_cuda(config)):
        return max(1, min(cores, models))
    return 1


def stage_threads(jobs: int) -> int:
    """CPU threads for each of `jobs` stages running at once: the cores shared out."""
    return max(1, (os.cpu_count() or 1) // jobs)


def _small_packaged_base(config: RunConfig) -> bool:
    from saftool.pretrained import PRETRAINED

    entry = PRETRAINED.get(config.train.resolved_base_model or "")
    return entry is not None and entry.parameters <= SMALL_BASE_PARAMETERS


def _trains_on_cuda(config: RunConfig) -> bool:
    """Where the grid's trainings run, by the one rule train itself follows (`devices.resolve_device`)."""
    from saftool.devices import resolve_device

    return resolve_device(config.train.device)


def run_subprocess(argv: list[str]) -> int:
    """Run one saftool command in a fresh interpreter: the runner when no in-process one is given."""
    return subprocess.run([sys.executable, "-m", "saftool", *argv], stdout=subprocess.DEVNULL).returncode


def parent_watch(parent: int) -> Callable[[], None]:
    """A call that makes the calling process end when `parent` (the `run` process) dies.

    Killed with SIGKILL, `run` cannot stop its children, and one still training when the user reruns
    would write the same checkpoint folder as the rerun. On Linux the kernel sends the child SIGTERM
    when its parent dies (PR_SET_PDEATHSIG), which ends its stage as a kill would; every stage resumes.
    `prctl` is looked up here, so that the call, as a fork's pre-exec hook, does nothing but call it.
    """
    if not sys.platform.startswith("linux"):
        return lambda: None
    import ctypes
    import signal

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1

    def watch() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    return watch


def _start_worker(threads: int, parent: int) -> None:
    """First thing in each worker process, before torch loads: it reads its thread count at import."""
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    yielding_cpu_threads()
    parent_watch(parent)()


def _run_logged(runner: Callable[[list[str]], int], argv: list[str], log: str) -> int:
    """One stage in a worker process, with everything written to stderr (C libraries too) in `log`."""
    import traceback

    Path(log).parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    with open(log, "w", encoding="utf-8") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            return runner(argv)
        except Exception:  # a crash is this stage's failure, told in its log, not the pool's
            traceback.print_exc()
            return 1
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


class LocalExecutor(Executor):
    takes_jobs = True

    def __init__(self, config: RunConfig, store: Store, options: ExecutorOptions | None = None):
        options = options or ExecutorOptions()
        self.config, self.store = config, store
        self.jobs = options.jobs if options.jobs is not None else default_jobs(config)
        if self.jobs < 1:
            raise UsageError(f"--jobs must be at least 1, not {self.jobs}")
        self.runner = options.runner or run_subprocess
        self.pending: list[Stage] = []
        self.path_cost: dict[str, float] = {}
        self.pool = None
        self.children: dict[str, subprocess.Popen] = {}

    def submit(self, stages: list[Stage]) -> None:
        self.pending = list(stages)
        self.path_cost = path_costs(self.pending)
        self.total = len(stages)
        self.position = {stage.id: i for i, stage in enumerate(stages, 1)}
        if self.jobs > 1 and any(not s.own_process for s in stages):
            import multiprocessing

            threads = stage_threads(self.jobs)
            # spawn, not fork: the parent's progress display runs a thread, and a fork copies its locks
            self.pool = multiprocessing.get_context("spawn").Pool(
                self.jobs, initializer=_start_worker, initargs=(threads, os.getpid())
            )

    def _start(self, stage: Stage) -> Callable[[], int | None]:
        """Start a stage; returns a poll: its exit code once it has ended, else None."""
        from saftool.train import checkpoint_dir

        resume = stage.kind == "train" and checkpoint_dir(self.store, stage.id.partition(":")[2]).exists()
        argv = saftool_argv(str(self.store.root), stage, resume)
        log = log_path(self.store, self.config, stage)
        shown = f"[{self.position[stage.id]}/{self.total}] {stage.command(self.store)}"
        if stage.own_process:
            console.info(f"{shown}  (own process; log: {log})")
            log.parent.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, "SAFTOOL_NO_PROGRESS": "1"}
            if self.jobs > 1:
                # stages side by side share the cores, as the pool's workers do. Every stage gets the
                # same share, even one that happens to run alone: bf16 products split over another
                # number of threads round differently, and a stage's answers would then depend on
                # what ran beside it
                env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(stage_threads(self.jobs))
            with open(log, "w", encoding="utf-8") as sink:
                child = subprocess.Popen(
                    [sys.executable, "-m", "saftool", *argv], stdout=subprocess.DEVNULL, stderr=sink,
                    preexec_fn=parent_watch(os.getpid()), env=env,
                )  # fmt: skip
            self.children[stage.id] = child
            return child.poll
        console.info(shown)
        if self.pool is None:
            code = self.runner(argv)
            return lambda: code
        result = self.pool.apply_async(_run_logged, (self.runner, argv, str(log)))
        return lambda: result.get() if result.ready() else None

    def wait(self) -> Iterator[Outcome]:
        ended: set[str] = set()
        running: dict[str, tuple[Stage, Callable[[], int | None]]] = {}
        submitted = {s.id for s in self.pending}
        try:
            while self.pending or running:
                while len(running) < self.jobs and (
                    stage := next_stage(self.pending, ended, submitted, self.jobs, self.path_cost)
                ):
                    self.pending.remove(stage)
                    running[stage.id] = (stage, self._start(stage))
                if not running:
                    return  # the plan is in dependency order, so nothing is left that could wait
                stage, code = _wait_any(running)
                del running[stage.id]
                self.children.pop(stage.id, None)
                yield Outcome(stage, code)
                if code != 0:
                    return  # a failed stage stops the rest (finally); every stage resumes on a rerun
                ended.add(stage.id)
        finally:
            self.cancel()

    def cancel(self) -> None:
        if self.pool is not None:  # after a failure or ^C this stops the stages still running; each resumes
            self.pool.terminate()
            self.pool.join()
            self.pool = None
        for child in self.children.values():
            child.terminate()
            child.wait()
        self.children.clear()
        self.pending.clear()


def next_stage(
    pending: list[Stage], ended: set[str], submitted: set[str], jobs: int, path_cost: dict[str, float]
) -> Stage | None:
    """The stage to start next, of those whose submitted dependencies have ended: with one job the
    first in plan order (the order --dry-run prints); with more, the one with the costliest chain of
    stages after it (`path_cost`, from `path_costs` of the submitted stages, computed once: what
    depends on a stage is still pending while it is; the first of equals). Trainings then go before the answers of the
    models already trained: in plan order the SmolLM2 grid's last training ran alone, on one of the
    two cores, for 7 minutes at the end."""
    ready = (s for s in pending if all(d in ended or d not in submitted for d in s.deps))
    if jobs == 1:
        return next(ready, None)
    return max(ready, key=lambda s: path_cost[s.id], default=None)


def path_costs(stages: list[Stage]) -> dict[str, float]:
    """Each stage's weight plus the costliest chain of `stages` that depend on it (its critical path
    to the end; `Stage.weight` is a rough relative cost)."""
    after: dict[str, list[Stage]] = {s.id: [] for s in stages}
    for stage in stages:
        for dep in stage.deps:
            if dep in after:
                after[dep].append(stage)
    cost: dict[str, float] = {}
    for stage in reversed(stages):  # the plan is in dependency order: what depends on a stage comes later
        cost[stage.id] = stage.weight + max((cost[s.id] for s in after[stage.id]), default=0.0)
    return cost


def _wait_any(running: dict[str, tuple[Stage, Callable[[], int | None]]]) -> tuple[Stage, int]:
    """The first running stage to end, and its exit code."""
    while True:
        for stage, poll in running.values():
            code = poll()
            if code is not None:
                return stage, code
        time.sleep(0.1)
