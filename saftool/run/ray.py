"""The Ray executor: each stage a Ray task asking for `num_cpus`/`num_gpus` from its resources.

The tasks go to the cluster `ray.init()` finds (`RAY_ADDRESS`), or to a local Ray it starts. A
task runs its stage's `saftool` command in a fresh process (so a stage that loads a model starts
with the whole GPU it was given) with the submitting directory as its working directory, writes
the stage's messages to `store/runs/NAME.logs/STAGE.log`, and its finished record when it
succeeded. A task's dependencies are the tasks of the stages it needs, passed as arguments: Ray
starts it only once they succeeded, and never when one failed. Ray retries a task whose worker
died (a lost node): the rerun resumes (`train --resume`; `infer` and `judge` skip what they wrote).
The tasks belong to the `run` process: they end with it, so there is no `--wait` to re-attach.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from saftool import console
from saftool.run.executor import (
    STORE_UNSEEN,
    Executor,
    ExecutorOptions,
    Outcome,
    done_path,
    done_record,
    log_path,
    saftool_argv,
    store_unseen,
)
from saftool.run.plan import RunConfig, Stage
from saftool.store import Store


class StageFailed(Exception):
    """Raised by a stage's task when its command failed; the tasks after it then never run."""

    def __init__(self, stage: str, code: int, why: str = ""):
        super().__init__(stage, code, why)
        self.stage, self.code, self.why = stage, code, why


def run_stage_task(stage_id: str, argv: list[str], cwd: str, store_root: str, log: str, done: str,
                   record: dict[str, str], *_inputs) -> int:  # fmt: skip
    """One stage, in a Ray worker. `_inputs` are the results of the tasks it depends on (all 0)."""
    from saftool.io import write_json

    if not Path(store_root, "runs").is_dir():
        raise StageFailed(stage_id, STORE_UNSEEN, "store not visible")
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as sink:
        sink.write(f"== saftool stage {stage_id} on {os.uname().nodename}\n")
        sink.flush()
        env = {**os.environ, "SAFTOOL_NO_PROGRESS": "1"}
        code = subprocess.run([sys.executable, "-m", "saftool", *argv], cwd=cwd, env=env,
                              stdout=subprocess.DEVNULL, stderr=sink).returncode  # fmt: skip
    if code != 0:
        raise StageFailed(stage_id, code)
    write_json(record, done)
    return 0


class RayExecutor(Executor):
    def __init__(self, config: RunConfig, store: Store, options: ExecutorOptions | None = None):
        import ray

        self.ray = ray
        self.config, self.store = config, store
        self.started_ray = not ray.is_initialized()
        if self.started_ray:  # RAY_ADDRESS names a cluster to join; without it Ray starts a local one
            ray.init(**({} if os.environ.get("RAY_ADDRESS") else {"include_dashboard": False}))
        self.refs: dict[str, tuple[Stage, object]] = {}

    def submit(self, stages: list[Stage]) -> None:
        task = self.ray.remote(run_stage_task)
        root = str(self.store.root.resolve())
        for stage in stages:
            argv = saftool_argv(root, stage)
            inputs = [self.refs[d][1] for d in stage.deps if d in self.refs]
            r = stage.resources
            options = {"num_cpus": r.cpus, "num_gpus": r.gpus, "name": stage.id, "retry_exceptions": False}
            if r.mem_gb is not None:
                options["memory"] = int(r.mem_gb * 1024**3)
            ref = task.options(**options).remote(
                stage.id, argv, str(Path.cwd()), root, str(log_path(self.store, self.config, stage).resolve()),
                str(done_path(self.store, self.config, stage).resolve()), done_record(stage), *inputs,
            )  # fmt: skip
            self.refs[stage.id] = (stage, ref)
        console.info(f"submitted {len(stages)} stages of {self.config.name!r} as Ray tasks")

    def wait(self) -> Iterator[Outcome]:
        by_ref = {ref: stage for stage, ref in self.refs.values()}
        left = list(by_ref)
        try:
            while left:
                ready, left = self.ray.wait(left, num_returns=1)
                yield self._outcome(by_ref[ready[0]], ready[0])
        finally:
            if self.started_ray:
                self.ray.shutdown()

    def _outcome(self, stage: Stage, ref) -> Outcome:
        try:
            self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as err:
            cause = getattr(err, "cause", None)
            if isinstance(cause, StageFailed) and cause.stage == stage.id:
                state = f"FAILED: {store_unseen(self.store)}" if cause.why else "FAILED"
                return Outcome(stage, cause.code, state)
            if isinstance(cause, StageFailed):
                return Outcome(stage, None, f"not run: {cause.stage} failed")
            return Outcome(stage, 1, f"task error: {str(err).strip().splitlines()[-1]}")
        except (self.ray.exceptions.TaskCancelledError, self.ray.exceptions.WorkerCrashedError) as err:
            return Outcome(stage, None, type(err).__name__)
        return Outcome(stage, 0, "FINISHED")

    def cancel(self) -> None:
        for _stage, ref in self.refs.values():
            self.ray.cancel(ref, force=True)
