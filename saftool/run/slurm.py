"""The SLURM executor: one job per stage, submitted with `sbatch`, chained with `afterok`.

* Stages of one kind with the same resources and the same shape of dependencies become one job
  array: the gen stages (no dependencies), the mixes (all after the same gen stages), the trains
  (task i after mix task i: `aftercorr`), the infers (after their train, `aftercorr`). Every job
  is submitted with `--kill-on-invalid-dep=yes`, so when a stage fails SLURM cancels what depends
  on it, and `--requeue`, so a preempted job starts again: its script passes `train --resume`, and
  `infer` and `judge` skip the records they already wrote, so the grid ends with one record each.
* A job writes its stage's messages to `store/runs/NAME.logs/STAGE.log` (appended: a requeued job
  adds to it) and, once its stage succeeded, its finished record `store/runs/NAME.done/STAGE.json`.
  The job ids go to `store/runs/NAME.jobs.json`, so `--status`, `--wait` and `--cancel` work from
  any shell. States come from `scontrol` (finished jobs stay there for the cluster's MinJobAge;
  after that, a stage's finished record tells), so no accounting database (`sacct`) is needed.
* The store must be on a filesystem every node sees: a job that cannot see it exits with
  `STORE_UNSEEN` before it runs anything, and `run` says so.
* Before anything is submitted, `sbatch --test-only` checks each distinct request (partition,
  account, resources); what SLURM refuses is one line with its reason, exit 2, nothing submitted.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from saftool import console
from saftool.errors import UsageError
from saftool.io import atomic_open, write_json
from saftool.run.executor import (
    STORE_UNSEEN,
    Executor,
    ExecutorOptions,
    Outcome,
    done_path,
    done_record,
    log_path,
    read_submission,
    runs_file,
    saftool_argv,
    store_unseen,
    submission_path,
)
from saftool.run.plan import RunConfig, Stage, StageResources, plan
from saftool.store import Store

POLL_SECONDS = 2.0
# job states after which a job will not run again (a REQUEUED or PREEMPTED job that is requeued comes back
# PENDING), and saftool's LOST: gone from slurmctld (MinJobAge) without its finished record
ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "LOST"}


@dataclass
class Group:
    """Stages submitted as one job array, task i running `stages[i]`."""

    kind: str
    resources: StageResources
    stages: list[Stage] = field(default_factory=list)
    job: str = ""  # the array's job id, once submitted


def array_groups(stages: list[Stage]) -> list[Group]:
    """Stages (in plan order) grouped into job arrays whose dependencies SLURM can state per array."""
    groups: list[Group] = []
    where: dict[str, tuple[int, int]] = {}  # stage id -> (group number, task)
    for stage in stages:
        joined = False
        for number in range(len(groups) - 1, -1, -1):
            group = groups[number]
            if group.kind != stage.kind or group.resources != stage.resources:
                continue
            # joining `group` must keep its dependencies expressible, on arrays submitted before it
            if _dependency(groups, where, number, [*group.stages, stage]) is not None:
                group.stages.append(stage)
                where[stage.id] = (number, len(group.stages) - 1)
                joined = True
            break  # only the newest array of a kind: an older one may be depended on by the ones between
        if not joined:
            groups.append(Group(stage.kind, stage.resources, [stage]))
            where[stage.id] = (len(groups) - 1, 0)
    return groups


def _dependency(groups: list[Group], where: dict[str, tuple[int, int]], number: int, members: list[Stage]):
    """The dependency of an array of `members`: {group: ("ok", tasks) | ("corr", None)}, or None if inexpressible."""
    deps: dict[int, tuple[str, frozenset[int] | None]] = {}
    needed = {where[d][0] for m in members for d in m.deps if d in where}
    for dep_group in needed:
        if dep_group >= number:
            return None
        tasks = [frozenset(where[d][1] for d in m.deps if d in where and where[d][0] == dep_group) for m in members]
        if all(t == tasks[0] for t in tasks) and tasks[0]:
            deps[dep_group] = ("ok", tasks[0])  # every task after the same tasks of that array
        elif all(t == {i} for i, t in enumerate(tasks)):
            deps[dep_group] = ("corr", None)  # task i after task i of that array
        else:
            return None
    return deps


def dependency_option(groups: list[Group], where: dict[str, tuple[int, int]], number: int) -> list[str]:
    deps = _dependency(groups, where, number, groups[number].stages)
    assert deps is not None  # array_groups only builds expressible arrays
    parts = []
    for dep_group, (how, tasks) in sorted(deps.items()):
        job = groups[dep_group].job
        if how == "corr":
            parts.append(f"aftercorr:{job}")
        else:
            parts.append("afterok:" + ":".join(f"{job}_{t}" for t in sorted(tasks)))
    return [f"--dependency={','.join(parts)}"] if parts else []


def stage_script(store: Store, config: RunConfig, stage: Stage) -> str:
    """The shell lines one job runs for `stage`: check the store, log, set up, run, record it finished."""
    root = store.root.resolve()
    log = log_path(store, config, stage).resolve()
    done = done_path(store, config, stage).resolve()
    argv = [sys.executable, "-m", "saftool", *saftool_argv(str(root), stage)]
    record = json.dumps(done_record(stage))
    lines = [
        f"[ -d {shlex.quote(str(root / 'runs'))} ] || exit {STORE_UNSEEN}",
        f"mkdir -p {shlex.quote(str(log.parent))} {shlex.quote(str(done.parent))}",
        f"exec >>{shlex.quote(str(log))} 2>&1",
        f'echo "== saftool stage {stage.id}: job $SLURM_JOB_ID (restart ${{SLURM_RESTART_COUNT:-0}}) on $(hostname), $(date -u)"',
        *config.slurm.setup,
        "export SAFTOOL_NO_PROGRESS=1",
        shlex.join(argv),
        f"printf '%s\\n' {shlex.quote(record)} > {shlex.quote(str(done))}.$SLURM_JOB_ID",
        f"mv -f {shlex.quote(str(done))}.$SLURM_JOB_ID {shlex.quote(str(done))}",
    ]
    return "\n".join(lines)


def array_script(store: Store, config: RunConfig, group: Group) -> str:
    cases = "".join(
        f"{task})\n{stage_script(store, config, stage)}\n;;\n" for task, stage in enumerate(group.stages)
    )
    return f"#!/bin/bash\nset -eo pipefail\ncase \"$SLURM_ARRAY_TASK_ID\" in\n{cases}esac\n"


def request_options(config: RunConfig, resources: StageResources) -> list[str]:
    """The sbatch options that ask for a stage's resources where the config says."""
    options = [f"--cpus-per-task={resources.cpus}"]
    if resources.gpus:
        options.append(f"--gres=gpu:{resources.gpus}")
    if resources.mem_gb is not None:
        options.append(f"--mem={max(1, round(resources.mem_gb * 1024))}M")
    if resources.time_min is not None:
        options.append(f"--time={resources.time_min}")
    for flag, value in (("--partition", config.slurm.partition), ("--account", config.slurm.account),
                        ("--qos", config.slurm.qos)):
        if value:
            options.append(f"{flag}={value}")
    return options + config.slurm.sbatch_args


def _sbatch_reason(stderr: str) -> str:
    """SLURM's own reason, from the last thing sbatch said."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    reason = lines[-1] if lines else "no reason given"
    for prefix in ("sbatch: error: ", "allocation failure: "):
        reason = reason.removeprefix(prefix)
    return reason


def require_slurm() -> None:
    for tool in ("sbatch", "scontrol", "scancel"):
        if shutil.which(tool) is None:
            raise UsageError(f"--executor slurm: {tool} is not on PATH (run on a SLURM login node, or see scripts/slurm-local.sh)")


class SlurmExecutor(Executor):
    detaches = True

    def __init__(self, config: RunConfig, store: Store, options: ExecutorOptions | None = None, *, check: bool = True):
        require_slurm()
        self.config, self.store = config, store
        self.groups: list[Group] = []
        if check:  # before anything is written or queued
            self._refuse_a_second_submission()
            self._test_requests()

    def _refuse_a_second_submission(self) -> None:
        if not submission_path(self.store, self.config).exists():
            return
        earlier, _ = SlurmExecutor.attach(self.config, self.store)
        live = [stage.id for stage, state, _code in earlier.states() if state not in ENDED]
        if live:
            raise UsageError(
                f"grid {self.config.name!r} is already submitted and has jobs that have not ended ({', '.join(live[:3])}"
                f"{', ...' if len(live) > 3 else ''}): follow it with --wait, see --status, or --cancel it"
            )

    # -- submit ---------------------------------------------------------------------------------

    def submit(self, stages: list[Stage]) -> None:
        self.groups = array_groups(stages)
        where = {s.id: (n, t) for n, g in enumerate(self.groups) for t, s in enumerate(g.stages)}
        scripts = runs_file(self.store, self.config, ".logs")
        scripts.mkdir(parents=True, exist_ok=True)
        try:
            for number, group in enumerate(self.groups):
                script = array_script(self.store, self.config, group)
                with atomic_open(scripts / f"array-{number}-{group.kind}.sbatch") as fh:
                    fh.write(script)  # beside the logs, to read what a job ran
                argv = [
                    "sbatch", "--parsable", f"--array=0-{len(group.stages) - 1}",
                    f"--job-name=saftool-{self.config.name}-{group.kind}", "--output=/dev/null",
                    "--open-mode=append", "--requeue", "--kill-on-invalid-dep=yes", f"--chdir={Path.cwd()}",
                    *request_options(self.config, group.resources), *dependency_option(self.groups, where, number),
                ]  # fmt: skip
                done = subprocess.run(argv, input=script, capture_output=True, text=True)
                if done.returncode != 0:
                    raise UsageError(
                        f"sbatch refused the {group.kind} stages: {_sbatch_reason(done.stderr)}"
                    )
                group.job = done.stdout.strip().split(";")[0]
        except BaseException:
            self.cancel()  # nothing half-submitted stays queued
            raise
        self._write_jobs()
        console.info(
            f"submitted {len(stages)} stages of {self.config.name!r} as {len(self.groups)} SLURM job arrays "
            f"({', '.join(g.job for g in self.groups)}); job ids in {submission_path(self.store, self.config)}"
        )

    def _test_requests(self) -> None:
        """`sbatch --test-only` for each distinct request: SLURM's own refusal, before anything is written or queued.

        Only the kinds the grid has, in plan order: a grid of tool-built models has no `model` (pull) stage,
        and a refusal must name stages that would have run."""
        seen: set[tuple[str, ...]] = set()
        for kind in dict.fromkeys(stage.kind for stage in plan(self.config, self.store)):
            options = tuple(request_options(self.config, self.config.stage_resources(kind)))
            if options in seen:
                continue
            seen.add(options)
            test = subprocess.run(["sbatch", "--test-only", *options, "--wrap", "true"], capture_output=True, text=True)
            if test.returncode != 0:
                raise UsageError(f"sbatch refused the {kind} stages ({' '.join(options)}): {_sbatch_reason(test.stderr)}")

    def _write_jobs(self) -> None:
        stages = {
            stage.id: {"job": f"{group.job}_{task}", "array": group.job, "task": task}
            for group in self.groups
            for task, stage in enumerate(group.stages)
        }
        write_json({"run": self.config.name, "executor": "slurm", "stages": stages},
                   submission_path(self.store, self.config))

    # -- attach, wait, cancel -------------------------------------------------------------------

    @classmethod
    def attach(cls, config: RunConfig, store: Store) -> tuple[SlurmExecutor, list[Stage]]:
        """The executor of a grid submitted earlier (from any shell), and its submitted stages."""
        executor = cls(config, store, check=False)
        jobs = read_submission(store, config)
        by_id = {s.id: s for s in plan(config, store)}
        stages = [by_id[sid] for sid in jobs["stages"] if sid in by_id]
        executor.groups = []
        for sid, entry in jobs["stages"].items():
            if sid not in by_id:
                continue
            if not executor.groups or executor.groups[-1].job != entry["array"]:
                executor.groups.append(Group(by_id[sid].kind, by_id[sid].resources, job=entry["array"]))
            executor.groups[-1].stages.append(by_id[sid])
        return executor, stages

    def states(self) -> list[tuple[Stage, str, int | None]]:
        """(stage, state, exit code) for every submitted stage, from scontrol and the finished records."""
        rows = []
        for group in self.groups:
            tasks = _array_tasks(group.job)
            for task, stage in enumerate(group.stages):
                state, code = tasks.get(task, (None, None))
                if done_path(self.store, self.config, stage).exists() and state in (None, "COMPLETED"):
                    state, code = "COMPLETED", 0
                elif state is None:  # gone from slurmctld (MinJobAge) without its finished record
                    state = "LOST"
                rows.append((stage, state, code))
        return rows

    def wait(self) -> Iterator[Outcome]:
        reported: set[str] = set()
        while True:
            rows = self.states()
            for stage, state, code in rows:
                if stage.id in reported or state not in ENDED:
                    continue
                reported.add(stage.id)
                yield self._outcome(stage, state, code)
            if len(reported) == len(rows):
                return
            time.sleep(POLL_SECONDS)

    def _outcome(self, stage: Stage, state: str, code: int | None) -> Outcome:
        if state == "COMPLETED":
            return Outcome(stage, 0, state)
        if state == "CANCELLED" and code in (None, 0):
            return Outcome(stage, None, state)  # by SLURM after a failed dependency, or by --cancel
        if code == STORE_UNSEEN and not log_path(self.store, self.config, stage).exists():
            state = f"{state}: {store_unseen(self.store)}"
        return Outcome(stage, code if code is not None else 1, state)

    def cancel(self) -> str | None:
        jobs = [g.job for g in self.groups if g.job]
        if not jobs:
            return None
        subprocess.run(["scancel", *jobs], capture_output=True, text=True)
        return f"scancel {' '.join(jobs)}"

    def status(self) -> list[str]:
        """`--status`: one line per stage of the plan: stage, job, state, log.

        A stage of the last submission shows its job and SLURM's state; one it left out shows `done`
        (finished before) or `not submitted`.
        """
        config, store = self.config, self.store
        jobs = read_submission(store, config)["stages"]
        states = {stage.id: state for stage, state, _code in self.states()}
        lines = []
        for stage in plan(config, store):
            if stage.id in states:
                job, state = jobs[stage.id]["job"], states[stage.id]
            else:
                job, state = "-", "done" if done_path(store, config, stage).exists() else "not submitted"
            lines.append("\t".join([stage.id, job, state, str(log_path(store, config, stage))]))
        return lines


def _array_tasks(job: str) -> dict[int, tuple[str, int | None]]:
    """task -> (state, exit code) of a job array, as slurmctld knows it; {} once it forgot the array."""
    shown = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True, text=True)
    tasks: dict[int, tuple[str, int | None]] = {}
    if shown.returncode != 0:
        return tasks
    for line in shown.stdout.splitlines():
        fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
        state = fields.get("JobState", "UNKNOWN")
        code = fields.get("ExitCode", "")
        exit_code = int(code.split(":")[0]) if code.split(":")[0].isdigit() else None
        for task in _task_ids(fields.get("ArrayTaskId", "0")):
            tasks[task] = (state, exit_code)
    return tasks


def _task_ids(spec: str) -> list[int]:
    """'3', '0-4' or '0,2-5%2' (pending tasks not yet split off) as task numbers."""
    ids: list[int] = []
    for part in spec.split("%")[0].split(","):
        low, _, high = part.partition("-")
        if low.isdigit():
            ids += range(int(low), int(high or low) + 1)
    return ids

