"""`saftool run`: the whole study, from one TOML config, as a plan of ordinary `saftool` commands.

* `saftool.run.plan`: the config and the plan (stages, their argv, resources and dependencies);
* `saftool.run.executor`: finished-stage records and the interface the engines implement
  (submit stages, wait for them, cancel them; attach to them and list them, for an engine whose
  stages outlive `run`), with the engines looked up by name;
* `saftool.run.local`, `.slurm`, `.ray`: one engine each.

A finished grid reruns in seconds: a stage is skipped when it finished under the same key (a hash
of its argv and its inputs' keys) and its outputs exist, and each stage resumes mid-way by itself
(`train --resume`; `infer` and `judge` skip finished records).
"""

from saftool.run.executor import (
    EXECUTORS,
    Executor,
    ExecutorOptions,
    Outcome,
    RunSummary,
    attach,
    cancel_submitted,
    done_path,
    execute,
    finished_keys,
    log_path,
    open_executor,
    reattach,
    stages_to_run,
)
from saftool.run.local import LocalExecutor, default_jobs
from saftool.run.plan import (
    HELDOUT_BENIGN,
    HELDOUT_HARMFUL,
    STORE_EVALS,
    GridModel,
    MixSpec,
    RunConfig,
    Stage,
    dry_run_lines,
    load_config,
    plan,
    resolve_evals,
    smoke,
)

__all__ = [
    "EXECUTORS", "HELDOUT_BENIGN", "HELDOUT_HARMFUL", "STORE_EVALS", "Executor", "ExecutorOptions", "GridModel",
    "LocalExecutor", "MixSpec", "Outcome", "RunConfig", "RunSummary", "Stage", "attach", "cancel_submitted",
    "default_jobs", "done_path", "dry_run_lines", "execute", "finished_keys", "load_config", "log_path",
    "open_executor", "plan", "reattach", "resolve_evals", "smoke", "stages_to_run",
]
