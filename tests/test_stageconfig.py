"""One config per stage: the command's defaults come from it, and the plan's argv parses back into it.

Each stage's config is rendered to argv (`stageconfig.to_argv`), the argv is parsed by the real
command, and the config the command hands its library function must be the one rendered. The
commands' source is read too: an option that maps onto a config field must take its default from
the field (`stageconfig.option`), never a literal restated beside it.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest
import typer.main

import saftool.judge
import saftool.runtimes
import saftool.train
from saftool import gen, mix, report
from saftool.cli import app
from saftool.gen import GenConfig
from saftool.infer import InferJob
from saftool.judge import JudgeJob
from saftool.judges.llm import LLMJudge
from saftool.mix import MixConfig
from saftool.presets import TrainJob
from saftool.report import ReportConfig
from saftool.run.plan import GEN_FIELDS, RunConfig, plan, resolve_evals, smoke
from saftool.runtimes import BatchOptions
from saftool.stageconfig import default, flag, to_argv
from saftool.store import Store

# stage -> (its config, the library function the command calls, and the config that call was given)
STAGES = {
    "gen": (GenConfig, (gen, "generate"), lambda args, kwargs: args[0]),
    "mix": (MixConfig, (mix, "build_mix"), lambda args, kwargs: args[0]),
    "train": (
        TrainJob, (saftool.train, "train"),
        lambda args, kwargs: TrainJob(mix=args[0], name=kwargs["name"], preset=kwargs["preset"], seed=args[1].seed,
                                      base_model=args[1].base_model),
    ),
    "infer": (InferJob, (saftool.runtimes, "load_runtime"), None),  # the job the command built: see `parse`
    "judge": (JudgeJob, (saftool.judge, "load_judge"), None),
    "report": (ReportConfig, (report, "report"), lambda args, kwargs: ReportConfig(out=str(args[1]), judge=kwargs["judge"])),
}  # fmt: skip


class Captured(Exception):
    pass


def parse(runner, monkeypatch, tmp_path, argv: list[str]):
    """The config the real command builds from `argv` and hands its library function."""
    kind = argv[0]
    model, (module, function), given = STAGES[kind]
    seen = []
    if kind in ("infer", "judge"):
        # infer and judge build their engine first (a runtime from the job's backend and model, the
        # judge the job names), then answer or judge as the job says: the job the command built is
        # recorded here, and the engine must be the one it names
        jobs = []
        built = model.__init__

        def record(self, **fields):
            built(self, **fields)
            jobs.append(self)

        def given(args, kwargs):
            job = jobs[-1]
            assert args == ((job.backend, job.model) if kind == "infer" else (job.judge,))
            return job

        monkeypatch.setattr(model, "__init__", record)

    def capture(*args, **kwargs):
        seen.append(given(args, kwargs))
        raise Captured

    monkeypatch.setattr(module, function, capture)
    output = ["-o", str(tmp_path / "out.jsonl")] if kind in ("gen", "mix") else []
    result = runner.invoke(app, ["--store", str(tmp_path / "store"), *argv, *output])
    assert isinstance(result.exception, Captured), (argv, result.output, result.exception)
    (config,) = seen
    assert isinstance(config, model)
    return config


ROUND_TRIPS = [
    GenConfig(),
    GenConfig(kind="benign", split="eval", n=12, seed=3, diverse=False),
    GenConfig(n=5, style="long", seed=7, backend="template", diverse=True, candidates=40,
              question_fraction=0.25, refusal="No.", concurrency=2),  # fmt: skip
    GenConfig(kind="harmful", split="eval", n=9, backend="openai", model="gpt-x", diverse=False),
    MixConfig(name="harm5-short", n_harm=5, style="short", seed=2, base="b.jsonl", harm="h.jsonl"),
    MixConfig(name="alpaca", n_harm=0, base_n=40),
    TrainJob(mix="harm10", preset="smoke", seed=3),
    TrainJob(mix="harm10", name="harm10-s1", preset="tiny", seed=1, base_model=None),
    TrainJob(mix="alpaca", name="a", preset="llama2-7b-lora", seed=0, base_model="/models/llama"),
    InferJob(model="harm10", eval_sets="heldout-harmful,heldout-benign", backend="hf", max_new_tokens=12),
    InferJob(model="m", input="q.jsonl", output="a.jsonl", name="qs", template="chat", system="Be brief.",
             max_new_tokens=50),  # fmt: skip
    InferJob(model="gpt-x", eval_sets="advbench", backend="openai", sample=True, temperature=0.5, top_p=0.9, seed=4),
    JudgeJob(),
    JudgeJob(judge="cascade:learned,llm", input="answers.jsonl", output="j.jsonl", kind="benign"),
    ReportConfig(),
    ReportConfig(out="figs-x", judge="cascade:learned,llm-seed:gpt-4o"),
]


@pytest.mark.parametrize("config", ROUND_TRIPS, ids=lambda c: f"{type(c).__name__}:{' '.join(to_argv(c))}")
def test_config_to_argv_to_command_gives_the_same_config(config, runner, monkeypatch, tmp_path):
    kind = next(k for k, (model, *_) in STAGES.items() if isinstance(config, model))
    back = parse(runner, monkeypatch, tmp_path, [kind, *to_argv(config)])
    assert back.model_dump() == config.model_dump()


def test_only_what_the_config_was_given_is_rendered():
    assert to_argv(GenConfig()) == []
    assert to_argv(GenConfig(diverse=True, model=None)) == []  # the default switch and None say nothing
    assert to_argv(GenConfig(diverse=False, kind="benign", n=3)) == ["--kind", "benign", "--n", "3", "--no-diverse"]


@pytest.mark.parametrize("kind", STAGES)
def test_each_option_takes_its_default_from_the_config(kind):
    """Every config field is an option of its command with the field's default (required where the
    field is), and the command's source takes it from the field instead of restating it."""
    model = STAGES[kind][0]
    command = typer.main.get_command(app).commands[kind]
    params = {}  # field -> the command's parameter that sets it, found by the field's flag
    for name, field in model.model_fields.items():
        param = params[name] = next(p for p in command.params if flag(model, name) in p.opts)
        if field.is_required():
            assert param.required, (kind, name)
        else:
            assert param.default == default(model, name), (kind, name)

    function = ast.parse(inspect.getsource(getattr(importlib.import_module(f"saftool.cli.{kind}"), kind))).body[0]
    args = function.args.args
    defaults = dict(zip([a.arg for a in args][len(args) - len(function.args.defaults):], function.args.defaults))
    for name, param in params.items():
        node = defaults.get(param.name)
        if node is not None:  # None: config_options made the option
            assert isinstance(node.func, ast.Name) and node.func.id == "option", (
                f"{kind} {flag(model, name)}: its default is restated instead of taken from {model.__name__}"
            )


SECTION_SOURCES = {
    "gen": {name: GenConfig for name in GEN_FIELDS},
    "train": {"preset": TrainJob, "base_model": TrainJob},
    "infer": {"backend": InferJob, "batch_size": BatchOptions, "max_new_tokens": InferJob, "template": InferJob,
              "system": InferJob},
    "judge": {"model": LLMJudge.Options, "prompt_set": LLMJudge.Options},
}  # fmt: skip


@pytest.mark.parametrize("table", SECTION_SOURCES)
def test_the_run_configs_stage_tables_are_the_stages_own_fields(table):
    """A run config's [gen], [train], [infer] and [judge] keys are the stage's (or its engine's) own
    fields: same type, default and bounds, so a default changed there changes the grid's too."""
    section = type(getattr(RunConfig(), table))
    for name, source in SECTION_SOURCES[table].items():
        field, own = section.model_fields[name], source.model_fields[name]
        assert (field.annotation, field.default, field.metadata) == (own.annotation, own.default, own.metadata)


def _grids():
    small = RunConfig.model_validate({
        "name": "g", "base": {"source": "builtin", "n": 30},
        "gen": {"n": 20, "backend": "openai", "model": "gpt-x", "diverse": False, "n_eval_harmful": 4},
        "mixes": [{"n_harm": 0}, {"n_harm": 10, "style": "long"}], "seeds": [1, 2],
        "train": {"preset": "tiny", "extra_args": ["--epochs", "1"]},
        "infer": {"backend": "openai", "batch_size": 3, "template": "chat", "system": "Be brief.", "max_new_tokens": 20},
    })  # fmt: skip
    real_base = RunConfig.model_validate({"train": {"base_model": "/models/llama"}, "output": "out/"})
    return [RunConfig(), smoke(RunConfig()), small, real_base]


@pytest.mark.parametrize("config", _grids(), ids=["default", "smoke", "small", "real-base"])
def test_the_plans_argv_parse_into_the_grids_settings(config, runner, monkeypatch, tmp_path):
    store = Store(tmp_path / "store")
    for stage in plan(config, store):
        if stage.kind not in STAGES:
            continue
        argv = stage.argv[:-2] if stage.kind == "gen" else stage.argv  # less gen's `-o FILE`
        parsed = parse(runner, monkeypatch, tmp_path, argv)
        if stage.id == "gen:harmful-train":
            wanted = {name: getattr(config.gen, name) for name in GEN_FIELDS}
            assert {name: getattr(parsed, name) for name in GEN_FIELDS} == wanted
        if stage.kind == "gen":
            assert parsed.seed == config.seed
        if stage.kind == "mix":
            spec = next(m for m in config.mixes if m.resolved_name == parsed.name)
            assert (parsed.n_harm, parsed.style, parsed.seed) == (spec.n_harm, spec.style, config.seed)
        if stage.kind == "train":
            grid_model = next(m for m in config.models() if f"train:{m.name}" == stage.id)
            assert (parsed.mix, parsed.name or parsed.mix, parsed.seed) == (grid_model.mix, grid_model.name,
                                                                           grid_model.seed)  # fmt: skip
            assert parsed.preset == config.train.resolved_preset
        if stage.id == "infer:base-answers":
            assert (parsed.model, parsed.max_new_tokens) == (config.train.resolved_base_model,
                                                             config.base.max_new_tokens)  # fmt: skip
            assert {"template": parsed.template, "system": parsed.system} == config.train.prompt_format
        elif stage.kind == "infer":
            assert parsed.eval_names() == resolve_evals(config, store)
            if config.infer.batch_size:  # the backend's own option, which the command passed on to it
                assert stage.argv[-2:] == ["--batch-size", str(config.infer.batch_size)]
            assert (parsed.backend, parsed.max_new_tokens, parsed.template, parsed.system) == (
                config.infer.backend, config.infer.max_new_tokens, config.infer.template, config.infer.system
            )
        if stage.kind == "judge":
            assert parsed.judge == config.judge.name
        if stage.kind == "report":
            assert (Path(parsed.out), parsed.judge) == (Path(config.output), config.judge.store_name)
