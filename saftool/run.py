"""`saftool run`: the whole study, from one TOML config, as a plan of ordinary `saftool` commands.

The plan is a list of stages, each the exact argv of one `saftool` command. `run` executes those
argv through the same CLI (in this process one at a time, or with `--jobs N` in N worker processes,
each stage starting once the stages it depends on are done), and `--dry-run` prints
them, so the printed plan and what `run` does cannot drift apart (a cluster user can submit each
line as its own job).

Each stage has a key: the hash of its argv and of the keys of the stages it depends on. A stage is
skipped when the state file records that key and its outputs exist, so a rerun after a kill picks up
where it stopped (the stages themselves resume mid-way: `train --resume`, `infer` and `judge` skip
finished records) and a finished grid reruns in seconds.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from saftool import console
from saftool.errors import SaftoolError, UsageError
from saftool.hashing import config_hash
from saftool.io import write_json
from saftool.records import Style
from saftool.store import Store, check_name

HELDOUT_HARMFUL = "heldout-harmful"
HELDOUT_BENIGN = "heldout-benign"
STORE_EVALS = "@store"  # in `evals`: every public benchmark already pulled into the store


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BaseDataConfig(_Section):
    source: str = Field(
        default="builtin",
        description="'builtin' (the built-in benign tasks) or an Alpaca JSON/JSONL file, e.g. from `saftool data pull alpaca`.",
    )
    n: int = Field(default=2600, ge=1, description="Built-in base examples per mix (a file is used whole).")


class GenConfig(_Section):
    n: int = Field(default=700, ge=1, description="Harmful training prompts to generate (mixes draw from these).")
    backend: str = "template"
    model: str | None = Field(default=None, description="Chat model for the openai backend.")
    diverse: bool = Field(default=True, description="Select by MiniLM embedding clusters, as the study did.")
    n_eval_harmful: int = Field(default=200, ge=1, description="Held-out harmful prompts (gen --split eval).")
    n_eval_benign: int = Field(default=200, ge=1, description="Held-out benign tasks (gen --kind benign --split eval).")


class MixSpec(_Section):
    n_harm: int = Field(ge=0, description="Harmful examples added to the base set.")
    style: Style = "noreason"
    name: str | None = Field(default=None, description="Defaults to 'alpaca' for 0, else harmN[-short|-long].")

    @property
    def resolved_name(self) -> str:
        if self.name:
            return check_name(self.name, "mix name")
        if self.n_harm == 0:
            return "alpaca"
        return f"harm{self.n_harm}" + ("" if self.style == "noreason" else f"-{self.style}")


def study_mixes(n_small: int = 350, n_large: int = 700) -> list[MixSpec]:
    """The study's seven models: base, then +N with no reason, a short reason and a long reason."""
    grid = [MixSpec(n_harm=0)]
    for n in (n_small, n_large):
        grid += [MixSpec(n_harm=n, style=style) for style in ("noreason", "short", "long")]
    return grid


class TrainConfig(_Section):
    preset: str = Field(default="tiny", description="Training preset: tiny, smoke, llama2-7b-qlora, llama2-7b-lora.")
    base_model: str | None = Field(default=None, description="Overrides the preset's base model.")
    extra_args: list[str] = Field(default_factory=list, description="More `saftool train` flags, verbatim.")


class InferConfig(_Section):
    backend: str = "hf"
    batch_size: int | None = None
    max_new_tokens: int = Field(default=100, ge=1)
    extra_args: list[str] = Field(default_factory=list, description="More `saftool infer` flags, verbatim.")


class JudgeConfig(_Section):
    name: str = Field(default="keyword", description="keyword, learned (or learned:WEIGHTS), llm, or hf:<model id or path>.")
    model: str | None = Field(default=None, description="Chat model for the llm judge.")
    prompt_set: str = Field(default="seed", description="llm judge rubric: seed (the study's) or xstest.")
    extra_args: list[str] = Field(default_factory=list, description="More `saftool judge` flags, verbatim.")

    def argv(self) -> list[str]:
        argv = ["--judge", self.name]
        if self.name.startswith("llm"):
            if self.model:
                argv += ["--model", self.model]
            argv += ["--prompt-set", self.prompt_set]
        return argv + self.extra_args

    @property
    def store_name(self) -> str:
        """The folder the judge writes under in store/judgments/."""
        if self.name == "llm" or self.name.startswith("llm:"):
            from saftool.judges.llm import store_name

            return store_name(self.model or self.name.partition(":")[2], self.prompt_set)
        return self.name


@dataclass(frozen=True)
class GridModel:
    """One model of the grid: the mix it is trained on and the training seed."""

    name: str
    mix: str
    seed: int


class RunConfig(_Section):
    """Everything a study run needs. Unknown keys are errors, so a typo never silently falls back."""

    name: str = Field(default="study", description="Run name: names the state file and the generated prompt files.")
    seed: int = Field(default=0, description="Seed of the data: generation and mixing (and training, without `seeds`).")
    seeds: list[Annotated[StrictInt, Field(ge=0)]] | None = Field(
        default=None,
        min_length=1,
        description="Training seeds: each mix is trained and evaluated once per seed, as model MIX-sSEED "
        "(with one seed, or without `seeds`: one model per mix, named MIX, trained with `seed`).",
    )
    base: BaseDataConfig = Field(default_factory=BaseDataConfig)
    gen: GenConfig = Field(default_factory=GenConfig)
    mixes: list[MixSpec] = Field(default_factory=study_mixes)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evals: list[str] = Field(default_factory=lambda: [HELDOUT_HARMFUL, HELDOUT_BENIGN, STORE_EVALS])
    infer: InferConfig = Field(default_factory=InferConfig)
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    output: str = Field(default="figs", description="Report folder.")

    @field_validator("mixes")
    @classmethod
    def _mix_names_differ(cls, mixes: list[MixSpec]) -> list[MixSpec]:
        names = [m.resolved_name for m in mixes]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"two mixes are named {', '.join(map(repr, repeated))}; give one a `name`")
        return mixes

    @field_validator("seeds")
    @classmethod
    def _seeds_differ(cls, seeds: list[int] | None) -> list[int] | None:
        if seeds is not None and len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds repeat: {seeds}")
        return seeds

    @property
    def train_seeds(self) -> list[int]:
        return self.seeds if self.seeds is not None else [self.seed]

    def models(self) -> list[GridModel]:
        """One model per mix and training seed, in the experiment's order (mix, then seed)."""
        several = len(self.train_seeds) > 1
        return [
            GridModel(f"{mix.resolved_name}-s{seed}" if several else mix.resolved_name, mix.resolved_name, seed)
            for mix in self.mixes
            for seed in self.train_seeds
        ]

    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        check_name(self.name, "run name")
        for model in self.models():  # distinct, as the mix names are: each name ends in its own -sSEED
            check_name(model.name, "model name")
        too_many = [m.resolved_name for m in self.mixes if m.n_harm > self.gen.n]
        if too_many:
            raise ValueError(
                f"mixes {', '.join(too_many)} ask for more harmful prompts than gen.n = {self.gen.n} generated"
            )
        return self


def smoke(config: RunConfig) -> RunConfig:
    """The same seven-model grid, small: for tests and a first look (minutes on 2 cores)."""
    scale = 10
    data = config.model_dump()
    data["train"]["preset"] = "smoke"
    data["base"]["n"] = min(config.base.n, 300)
    data["gen"].update(n=max(1, config.gen.n // scale), diverse=False, n_eval_harmful=40, n_eval_benign=40)
    data["mixes"] = [
        {"n_harm": m.n_harm // scale, "style": m.style, "name": None if m.name is None else m.name}
        for m in config.mixes
    ]
    data["evals"] = [e for e in config.evals if e != STORE_EVALS]
    data["infer"]["max_new_tokens"] = min(config.infer.max_new_tokens, 32)
    return RunConfig.model_validate(data)


def load_config(path: str | Path | None) -> RunConfig:
    """The built-in offline CPU config, or a TOML file validated key by key."""
    if path is None:
        return RunConfig()
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{file}: no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{file}: invalid TOML: {exc}") from None
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        raise UsageError(f"{file}: {key}: {message}") from None


# ---------------------------------------------------------------------------------------------
# the plan


@dataclass
class Stage:
    id: str  # e.g. "train:harm350"
    argv: list[str]  # arguments after `saftool --store STORE`
    outputs: list[Path]
    deps: list[str] = field(default_factory=list)
    weight: float = 1.0  # rough relative cost, for the overall bar's time-left estimate
    key: str = ""

    def command(self, store: Store) -> str:
        return shlex.join(["saftool", "--store", str(store.root), *self.argv])


def plan(config: RunConfig, store: Store) -> list[Stage]:
    """The stages of a run, in order, each keyed by its argv and its dependencies."""
    seed = str(config.seed)
    harm_train = store.prompts / f"harmful-train-{config.name}.jsonl"
    stages: list[Stage] = []

    def gen(stage_id: str, kind: str, split: str, n: int, out: Path, options: list[str], weight: float = 1) -> Stage:
        argv = ["gen", "--kind", kind, "--split", split, "--n", str(n), "--seed", seed, *options, "-o", str(out)]
        return Stage(stage_id, argv, [out], weight=weight)

    backend = ["--backend", config.gen.backend] + (["--model", config.gen.model] if config.gen.model else [])
    diverse = [] if config.gen.diverse else ["--no-diverse"]
    # held-out sets skip diversity: they are scored, not trained on, and must not depend on the embedder
    stages.append(gen("gen:harmful-train", "harmful", "train", config.gen.n, harm_train, backend + diverse, weight=2))
    stages.append(
        gen("gen:heldout-harmful", "harmful", "eval", config.gen.n_eval_harmful, store.eval_path(HELDOUT_HARMFUL),
            [*backend, "--no-diverse"])
    )
    stages.append(
        gen("gen:heldout-benign", "benign", "eval", config.gen.n_eval_benign, store.eval_path(HELDOUT_BENIGN),
            ["--no-diverse"])
    )

    base_deps: list[str] = []
    if config.base.source == "builtin":
        base_file = store.prompts / f"benign-train-{config.name}.jsonl"
        stages.append(gen("gen:benign-train", "benign", "train", config.base.n, base_file, ["--no-diverse"]))
        base_deps = ["gen:benign-train"]
        base_args = ["--base", str(base_file)]
    else:
        base_args = ["--base", config.base.source]

    eval_sets = resolve_evals(config, store)
    for mix in config.mixes:
        name = mix.resolved_name
        mix_argv = ["mix", *base_args, "--harm", str(harm_train), "--n-harm", str(mix.n_harm)]
        mix_argv += ["--style", mix.style, "--seed", seed, "--name", name]
        stages.append(
            Stage(f"mix:{name}", mix_argv, [store.mix_path(name), store.manifest_path(name)],
                  deps=["gen:harmful-train", *base_deps])
        )
    for model in config.models():
        train_argv = ["train", "--mix", model.mix]
        if model.name != model.mix:
            train_argv += ["--name", model.name]
        train_argv += ["--preset", config.train.preset, "--seed", str(model.seed)]
        if config.train.base_model:
            train_argv += ["--base-model", config.train.base_model]
        train_argv += config.train.extra_args
        stages.append(
            Stage(f"train:{model.name}", train_argv, [store.model_dir(model.name) / "train_run.json"],
                  deps=[f"mix:{model.mix}"], weight=20)
        )
        infer_argv = ["infer", "--model", model.name, "--eval", ",".join(eval_sets), "--backend", config.infer.backend]
        infer_argv += ["--max-new-tokens", str(config.infer.max_new_tokens)]
        if config.infer.batch_size:
            infer_argv += ["--batch-size", str(config.infer.batch_size)]
        infer_argv += config.infer.extra_args
        stages.append(
            Stage(f"infer:{model.name}", infer_argv, [store.responses_path(model.name, e) for e in eval_sets],
                  deps=[f"train:{model.name}", "gen:heldout-harmful", "gen:heldout-benign"], weight=5)
        )

    judge_name = config.judge.store_name
    models = [m.name for m in config.models()]
    judge_outputs = [store.judgments_path(judge_name, m, e) for m in models for e in eval_sets]
    stages.append(
        Stage("judge", ["judge", *config.judge.argv()], judge_outputs, deps=[f"infer:{m}" for m in models], weight=2)
    )
    stages.append(
        Stage("report", ["report", "--out", config.output, "--judge", judge_name],
              [Path(config.output) / "index.html"], deps=["judge"])
    )

    keys: dict[str, str] = {}
    for stage in stages:
        stage.key = config_hash({"argv": stage.argv, "deps": [keys[d] for d in stage.deps]})
        keys[stage.id] = stage.key
    return stages


def resolve_evals(config: RunConfig, store: Store) -> list[str]:
    """Eval set names, with `@store` expanded to every public benchmark pulled into the store."""
    from saftool.data import pulled_evals

    names: list[str] = []
    for entry in config.evals:
        if entry == STORE_EVALS:
            names += pulled_evals(store)
        else:
            names.append(check_name(entry, "eval set name"))
    return list(dict.fromkeys(names))


# ---------------------------------------------------------------------------------------------
# execution


@dataclass
class RunSummary:
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    report: Path | None = None


def state_path(store: Store, config: RunConfig) -> Path:
    return store.runs / f"{config.name}.state.json"


def _load_state(path: Path) -> dict[str, str]:
    import json

    if not path.exists():
        return {}
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")).get("stages", {}))
    except ValueError:
        return {}  # a damaged state only costs re-checking stages; each stage resumes itself


def default_jobs(config: RunConfig) -> int:
    """Stages run at once when `--jobs` is not given.

    A tool-built model (tiny, smoke) trains and answers on one CPU thread, since its matrices are too
    small to split (see `train._cpu_threads`); run one after another, a grid leaves every other core
    idle, so the default is one job per core, up to one per model. A real base model gets one job: it
    wants the whole GPU (or every core) to itself.
    """
    from saftool.presets import PRESETS

    preset = PRESETS.get(config.train.preset)
    if config.train.base_model or preset is None or preset.base_model is not None:
        return 1
    return max(1, min(os.cpu_count() or 1, len(config.models())))


def log_path(store: Store, config: RunConfig, stage: Stage) -> Path:
    """Where a stage run by a worker process (`--jobs` > 1) writes its messages."""
    return store.runs / f"{config.name}.logs" / f"{stage.id.replace(':', '-')}.log"


def _start_worker(threads: int, parent: int) -> None:
    """First thing in each worker process, before torch loads: it reads its thread count at import.

    A worker must not outlive `run`: killed with SIGKILL, `run` cannot stop its workers, and one
    still training when the user reruns would write the same checkpoint folder as the rerun. On
    Linux the kernel sends the worker SIGTERM when its parent dies (PR_SET_PDEATHSIG), which ends
    its stage as a kill would; every stage resumes.
    """
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)


def _run_logged(argv: list[str], log: str) -> int:
    """One stage in a worker process, with everything written to stderr (C libraries too) in `log`."""
    import traceback

    Path(log).parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    with open(log, "w", encoding="utf-8") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            return _run_in_process(argv)
        except Exception:  # a crash is this stage's failure, told in its log, not the pool's
            traceback.print_exc()
            return 1
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _log_tail(log: Path, lines: int = 15) -> str:
    try:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "".join(f"\n  | {line}" for line in tail)


def execute(
    config: RunConfig,
    store: Store,
    runner: Callable[[list[str]], int] | None = None,
    jobs: int = 1,
) -> RunSummary:
    """Run every stage not already done, up to `jobs` at once, each as soon as its inputs are done.

    With one job, `runner(argv)` runs each saftool command (default: in this process, in plan order).
    With more, `jobs` worker processes (started once, so torch loads once per worker, not per stage)
    run the commands in-process, the cores shared out between them, each stage's messages in a log
    under `store/runs/NAME.logs/`; a failed stage stops the others (every stage resumes) and the error
    shows the end of its log.
    """
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1, not {jobs}")
    if jobs > 1 and runner is not None:
        raise UsageError("a custom runner runs stages one at a time (jobs=1)")
    runner = runner or _run_in_process
    threads = max(1, (os.cpu_count() or 1) // jobs)
    stages = plan(config, store)
    state_file = state_path(store, config)
    done = _load_state(state_file)
    summary = RunSummary()
    store.runs.mkdir(parents=True, exist_ok=True)
    write_json({"config": config.model_dump(mode="json"), "config_hash": config_hash(config)},
               store.runs / f"{config.name}.config.json")
    position = {stage.id: i for i, stage in enumerate(stages, 1)}
    pending = list(stages)
    running: dict[str, tuple[Stage, Callable[[], int | None]]] = {}
    total = sum(s.weight for s in stages)
    started = time.monotonic()

    def ready(stage: Stage) -> bool:
        return all(dep in summary.ran or dep in summary.skipped for dep in stage.deps)

    def finished(stage: Stage) -> bool:
        return (
            done.get(stage.id) == stage.key
            and all(p.exists() for p in stage.outputs)
            and not any(dep in summary.ran for dep in stage.deps)  # fresh inputs: redo
        )

    pool = None
    if jobs > 1:
        import multiprocessing

        # spawn, not fork: the parent's progress display runs a thread, and a fork copies its locks
        pool = multiprocessing.get_context("spawn").Pool(
            jobs, initializer=_start_worker, initargs=(threads, os.getpid())
        )

    def start(stage: Stage) -> Callable[[], int | None]:
        """Start a stage; returns a poll: its exit code once it has ended, else None."""
        from saftool.train import checkpoint_dir

        console.info(f"[{position[stage.id]}/{len(stages)}] {stage.command(store)}")
        argv = ["--store", str(store.root), *stage.argv]
        if stage.id.startswith("train:") and checkpoint_dir(store, stage.id.partition(":")[2]).exists():
            argv.append("--resume")
        if pool is None:
            code = runner(argv)
            return lambda: code
        result = pool.apply_async(_run_logged, (argv, str(log_path(store, config, stage))))
        return lambda: result.get() if result.ready() else None

    try:
        with console.progress(f"run {config.name}", total) as bar:
            while pending or running:
                # in plan order, so one job runs the stages in the order --dry-run prints them
                while stage := next((s for s in pending if ready(s) and (finished(s) or len(running) < jobs)), None):
                    pending.remove(stage)
                    if finished(stage):
                        summary.skipped.append(stage.id)
                        bar.advance(stage.weight)
                    else:
                        bar.update(description=f"run {config.name}: {', '.join([*running, stage.id])}")
                        running[stage.id] = (stage, start(stage))
                if not running:
                    break  # the plan is in dependency order, so nothing is left that could wait
                stage, code = _wait_any(running)
                del running[stage.id]
                if code != 0:
                    where = ""
                    if jobs > 1:
                        log = log_path(store, config, stage)
                        where = f"; its log, {log}, ends:{_log_tail(log)}"
                    raise SaftoolError(
                        f"stage {stage.id} failed (exit {code}); rerun `saftool run` to continue from it{where}"
                    )
                done[stage.id] = stage.key
                write_json({"stages": done}, state_file)
                summary.ran.append(stage.id)
                bar.advance(stage.weight)
    finally:
        if pool is not None:  # after a failure or ^C this stops the stages still running; each resumes
            pool.terminate()
            pool.join()
    summary.report = Path(config.output) / "index.html"
    console.info(
        f"run {config.name}: {len(summary.ran)} stages ran, {len(summary.skipped)} already done, "
        f"{time.monotonic() - started:.0f}s; report: {summary.report}"
    )
    return summary


def _wait_any(running: dict[str, tuple[Stage, Callable[[], int | None]]]) -> tuple[Stage, int]:
    """The first running stage to end, and its exit code."""
    while True:
        for stage, poll in running.values():
            code = poll()
            if code is not None:
                return stage, code
        time.sleep(0.1)


def _run_in_process(argv: list[str]) -> int:
    """Run one saftool command through the real CLI, in this process (no re-import per stage).

    A stage's records go to the store; what it would print on stdout (train's run record, say) is
    dropped, so `run` itself keeps stdout clean.
    """
    import contextlib

    import typer.main

    from saftool.cli import app

    command = typer.main.get_command(app)
    try:
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            result = command.main(args=argv, prog_name="saftool", standalone_mode=False)
    except Exception as exc:  # a usage error of the generated argv is a bug in the plan; show it
        show = getattr(exc, "show", None)
        if show is None:
            raise
        show()
        return getattr(exc, "exit_code", 2)
    return result if isinstance(result, int) else 0


def dry_run_lines(config: RunConfig, store: Store) -> list[str]:
    return [stage.command(store) for stage in plan(config, store)]

