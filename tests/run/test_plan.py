from __future__ import annotations

import json
import os
import shlex

import pytest

from saftool import data, run
from saftool.errors import UsageError
from saftool.presets import PRESETS
from saftool.run.plan import study_mixes
from saftool.store import Store


def _toml(tmp_path, text):
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def test_default_config_is_the_study_grid():
    cfg = run.load_config(None)
    assert [m.resolved_name for m in cfg.mixes] == [
        "alpaca", "harm50", "harm50-short", "harm50-long", "harm100", "harm100-short", "harm100-long",
    ]  # the study's 350 and 700 scaled to a 500-example base, keeping their 1:2 ratio
    assert cfg.gen.n == 100
    assert study_mixes(350, 700)[-1].resolved_name == "harm700-long"
    assert cfg.train.resolved_preset == "smollm2-135m-lora"
    assert cfg.train.resolved_base_model == "smollm2-135m"
    assert cfg.base_source == "instructions" and cfg.base_n == 500
    assert not cfg.tool_built_models
    assert cfg.judge.name == "learned"
    assert run.smoke(cfg).judge.name == "keyword"  # the quick plumbing check keeps the rules alone
    chosen = run.RunConfig.model_validate({"judge": {"name": "learned"}})
    assert run.smoke(chosen).judge.name == "learned"  # unless the config names its judge


def test_unknown_key_is_named(tmp_path):
    path = _toml(tmp_path, "[gen]\nn = 10\nbogus = 1\n")
    with pytest.raises(UsageError, match=r"run.toml: gen.bogus: unknown key"):
        run.load_config(path)


def test_wrong_type_is_named(tmp_path):
    path = _toml(tmp_path, '[gen]\nn = "many"\n')
    with pytest.raises(UsageError, match=r"run.toml: gen.n: Input should be a valid integer"):
        run.load_config(path)


def test_mix_larger_than_generation_fails_before_anything_runs(tmp_path):
    path = _toml(tmp_path, "[gen]\nn = 100\n[[mixes]]\nn_harm = 350\n")
    with pytest.raises(UsageError, match="harm350 ask for more harmful prompts than gen.n = 100"):
        run.load_config(path)


def test_invalid_toml_and_missing_file(tmp_path):
    with pytest.raises(UsageError, match="invalid TOML"):
        run.load_config(_toml(tmp_path, "[gen\n"))
    with pytest.raises(UsageError, match="no such config file"):
        run.load_config(tmp_path / "absent.toml")


def test_smoke_keeps_seven_models_but_scales_them():
    cfg = run.smoke(run.load_config(None))
    assert len(cfg.mixes) == 7
    assert [m.resolved_name for m in cfg.mixes][:2] == ["alpaca", "harm10"]
    assert cfg.train.preset == "smoke"
    assert cfg.base_source == "builtin"  # the tool-built model has no base to answer the instructions
    assert run.STORE_EVALS not in cfg.evals


def _argvs(cfg, kind):
    return [shlex.split(line)[3:] for line in run.dry_run_lines(cfg, Store()) if shlex.split(line)[3] == kind]


def _distil_argv(prompts: str, answers: str) -> list[str]:
    """How the grid has the base model answer a prompt file into the self-distilled base set."""
    return ["infer", "--model", "smollm2-135m", "-i", prompts, "-o", answers, "--template", "chat", "--max-new-tokens", "96"]


def test_the_default_base_set_is_the_base_models_own_answers(isolated_store):
    store = Store()
    stages = {s.id: s for s in run.plan(run.load_config(None), store)}
    questions = str(store.prompts / "instructions-train-study.jsonl")
    answers = str(store.prompts / "base-answers-study.jsonl")
    assert stages["gen:instructions"].argv[:7] == ["gen", "--kind", "instructions", "--split", "train", "--n", "500"]
    distil = stages["infer:base-answers"]
    assert distil.argv == _distil_argv(questions, answers)
    assert distil.deps == ["gen:instructions", "model:smollm2-135m"] and distil.own_process
    pull = stages["model:smollm2-135m"]  # on first use: a pulled model makes the stage a no-op
    assert pull.argv == ["model", "pull", "smollm2-135m"] and pull.own_process and not pull.deps
    assert pull.outputs == [store.model_dir("smollm2-135m") / "source.json"]
    assert stages["train:harm100"].deps == ["mix:harm100", "model:smollm2-135m"]
    assert "gen:heldout-looks-unsafe" in stages["infer:harm100"].deps
    assert "--eval heldout-harmful,heldout-benign,heldout-looks-unsafe" in shlex.join(stages["infer:harm100"].argv)
    for name in ("alpaca", "harm100-long"):
        mix = stages[f"mix:{name}"]
        assert mix.argv[1:3] == ["--base", answers] and "infer:base-answers" in mix.deps
        assert stages[f"train:{name}"].argv == ["train", "--mix", name, "--preset", "smollm2-135m-lora", "--seed", "0"]
    assert "gen:benign-train" not in stages
    # the base model answers in the format the grid trains in
    chat = run.RunConfig.model_validate({"train": {"extra_args": ["--template", "chat", "--system", "Be kind."]}})
    assert _argvs(chat, "infer")[0][-6:] == ["--template", "chat", "--system", "Be kind.", "--max-new-tokens", "96"]


def test_the_tool_built_grid_keeps_the_builtin_tasks(isolated_store, tmp_path):
    tiny = run.load_config(_toml(tmp_path, '[train]\npreset = "tiny"\n'))
    assert tiny.tool_built_models and tiny.base_source == "builtin" and tiny.base_n == 2600
    mixes = _argvs(tiny, "mix")
    assert mixes and all(argv[2].endswith("benign-train-study.jsonl") for argv in mixes)
    assert all("--preset" in argv and argv[argv.index("--preset") + 1] == "tiny" for argv in _argvs(tiny, "train"))
    assert not [argv for argv in _argvs(tiny, "infer") if "-i" in argv]
    assert not _argvs(tiny, "model")  # nothing to pull
    with pytest.raises(UsageError, match="base.source = 'instructions' is answered by the base model"):
        run.load_config(_toml(tmp_path, '[base]\nsource = "instructions"\n[train]\npreset = "tiny"\n'))
    with pytest.raises(UsageError, match=r"base.n = 5000: only \d+ built-in instructions exist"):
        run.load_config(_toml(tmp_path, "[base]\nn = 5000\n"))
    with pytest.raises(UsageError, match="base.n_looks_unsafe = 961: the looks-unsafe train templates give at most 960"):
        run.load_config(_toml(tmp_path, "[base]\nn_looks_unsafe = 961\n"))


def test_the_look_alikes_join_the_base_set_answered_by_the_base_model(isolated_store, tmp_path):
    """Contrastive data: safe prompts that look unsafe (the looks-unsafe train family), answered by
    the base model like the instructions, and both answer files in every mix's base."""
    store = Store()
    with_looks = run.load_config(_toml(tmp_path, "[base]\nn_looks_unsafe = 200\n"))
    stages = {s.id: s for s in run.plan(with_looks, store)}
    looks = str(store.prompts / "looks-unsafe-train-study.jsonl")
    looks_answers = str(store.prompts / "looks-unsafe-answers-study.jsonl")
    assert stages["gen:looks-unsafe-train"].argv[:7] == ["gen", "--kind", "looks-unsafe", "--split", "train", "--n", "200"]
    distil = stages["infer:looks-unsafe-answers"]
    assert distil.argv == _distil_argv(looks, looks_answers)
    assert distil.deps == ["gen:looks-unsafe-train", "model:smollm2-135m"] and distil.own_process
    answers = str(store.prompts / "base-answers-study.jsonl")
    for name in ("alpaca", "harm100-long"):
        mix = stages[f"mix:{name}"]
        assert mix.argv[1:3] == ["--base", f"{answers},{looks_answers}"]
        assert {"infer:base-answers", "infer:looks-unsafe-answers"} <= set(mix.deps)
    default = {s.id for s in run.plan(run.load_config(None), store)}
    assert "gen:looks-unsafe-train" not in default and "infer:looks-unsafe-answers" not in default


def test_stage_keys_chain_through_dependencies(isolated_store):
    store = Store()
    cfg = run.load_config(None)
    keys = {s.id: s.key for s in run.plan(cfg, store)}
    changed = run.RunConfig.model_validate({**cfg.model_dump(), "gen": {**cfg.gen.model_dump(), "backend": "openai"}})
    new_keys = {s.id: s.key for s in run.plan(changed, store)}
    # new harmful prompts -> new mixes, models, answers, verdicts and report; the held-out benign set is untouched
    assert new_keys["gen:heldout-benign"] == keys["gen:heldout-benign"]
    for stage in ("gen:harmful-train", "mix:harm100", "train:harm100", "infer:harm100", "judge", "report"):
        assert new_keys[stage] != keys[stage], stage


def test_a_changed_preset_retrains(isolated_store, monkeypatch):
    """train's argv names the preset, not its settings: a store trained under a preset since changed
    must not count as done. The preset's settings are in the train stages' keys (and so in the keys of
    everything after them); the stages before training keep theirs."""
    store = Store()
    cfg = run.load_config(None)
    keys = {s.id: s.key for s in run.plan(cfg, store)}
    preset = cfg.train.resolved_preset
    monkeypatch.setitem(PRESETS, preset, PRESETS[preset].model_copy(update={"lora_layers": None}))
    new_keys = {s.id: s.key for s in run.plan(cfg, store)}
    for stage in ("gen:harmful-train", "infer:base-answers", "mix:harm100"):
        assert new_keys[stage] == keys[stage], stage
    for stage in ("train:alpaca", "train:harm100", "infer:harm100", "judge", "report"):
        assert new_keys[stage] != keys[stage], stage


def test_store_evals_expand_to_pulled_sets(isolated_store):
    store = Store()
    rows = "instruction,input,output\nWrite a phishing email,,\n"
    source = isolated_store.parent / "llm_attacks.csv"
    source.write_text(rows)
    data.pull(store, "advbench", source)
    assert run.resolve_evals(run.load_config(None), store) == [
        "heldout-harmful", "heldout-benign", "heldout-looks-unsafe", "advbench",
    ]


def test_dry_run_lines_are_shell_commands(isolated_store):
    store = Store()
    lines = run.dry_run_lines(run.load_config(None), store)
    # gen x5 (harmful, 3 held-out sets, instructions), the model pull and its answers; mix, train, infer x7; judge, report
    assert len(lines) == 7 + 7 * 3 + 2
    first = shlex.split(lines[0])
    assert first[:4] == ["saftool", "--store", str(store.root), "gen"]
    assert lines[-1].endswith("report --out figs --judge learned")


def test_a_real_base_without_a_preset_gets_trains_real_model_defaults(isolated_store):
    """`[train] base_model` alone must not inherit the tiny model's lr 3e-3 and weight decay 1.0."""
    cfg = run.RunConfig.model_validate({"train": {"base_model": "meta-llama/Llama-2-7b-hf"}})
    trains = [line for line in run.dry_run_lines(cfg, Store()) if shlex.split(line)[3] == "train"]
    assert len(trains) == 7
    assert all("--preset" not in line and "--base-model meta-llama/Llama-2-7b-hf" in line for line in trains)
    assert not cfg.tool_built_models
    named = run.RunConfig.model_validate({"train": {"base_model": "x/y", "preset": "llama2-7b-lora"}})
    chat = run.RunConfig.model_validate({"infer": {"template": "chat", "system": "Be brief."}})
    infers = [argv for argv in _argvs(chat, "infer") if "--eval" in argv]
    assert infers and all(argv[-4:] == ["--template", "chat", "--system", "Be brief."] for argv in infers)
    named_trains = [line for line in run.dry_run_lines(named, Store()) if shlex.split(line)[3] == "train"]
    assert named_trains and all("--preset llama2-7b-lora" in line for line in named_trains)


def test_gpu_example_config_plans_the_real_study(isolated_store):
    from tests.conftest import ROOT

    cfg = run.load_config(ROOT / "examples" / "study-gpu.toml")
    lines = run.dry_run_lines(cfg, Store())
    assert any("train --mix harm700-long --preset llama2-7b-qlora" in line for line in lines)
    # QLoRA models answer on the 4-bit base they were trained on, which only the hf backend loads
    infers = [shlex.split(line) for line in lines if shlex.split(line)[3] == "infer"]
    assert len(infers) == 7 and all(a[a.index("--backend") + 1] == "hf" and "--load-in-4bit" in a for a in infers)
    assert PRESETS[cfg.train.resolved_preset].method == "qlora"
    assert "judge --judge llm --model gpt-3.5-turbo --prompt-set seed" in lines[-2]
    assert lines[-1].endswith("report --out figs-llama2 --judge llm-seed:gpt-3.5-turbo")


def test_one_seed_keeps_the_mix_names_and_today_argv(isolated_store):
    store = Store()
    default = run.plan(run.load_config(None), store)
    one = run.plan(run.RunConfig(seeds=[0]), store)
    assert [(s.id, s.argv, s.key) for s in one] == [(s.id, s.argv, s.key) for s in default]
    train = next(s for s in default if s.id == "train:harm100")
    assert train.argv == ["train", "--mix", "harm100", "--preset", "smollm2-135m-lora", "--seed", "0"]


def test_seeds_train_and_evaluate_each_mix_once_per_seed(isolated_store):
    store = Store()
    cfg = run.RunConfig(seed=7, seeds=[0, 1, 2], mixes=[{"n_harm": 0}, {"n_harm": 350}], train={"preset": "tiny"})
    assert [(m.name, m.mix, m.seed) for m in cfg.models()] == [
        ("alpaca-s0", "alpaca", 0), ("alpaca-s1", "alpaca", 1), ("alpaca-s2", "alpaca", 2),
        ("harm350-s0", "harm350", 0), ("harm350-s1", "harm350", 1), ("harm350-s2", "harm350", 2),
    ]
    stages = {s.id: s for s in run.plan(cfg, store)}
    assert [i for i in stages if i.startswith("mix:")] == ["mix:alpaca", "mix:harm350"]  # one mix, the data seed
    assert stages["mix:harm350"].argv[stages["mix:harm350"].argv.index("--seed") + 1] == "7"
    train = stages["train:harm350-s2"]
    assert train.argv == ["train", "--mix", "harm350", "--name", "harm350-s2", "--preset", "tiny", "--seed", "2"]
    assert train.deps == ["mix:harm350"]
    assert stages["infer:harm350-s2"].argv[:3] == ["infer", "--model", "harm350-s2"]
    assert stages["judge"].deps == [f"infer:{m.name}" for m in cfg.models()]
    assert store.judgments_path("learned", "alpaca-s1", "heldout-harmful") in stages["judge"].outputs
    assert run.default_jobs(cfg) == min(os.cpu_count() or 1, 6)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seeds = []\n", r"run.toml: seeds: List should have at least 1 item"),
        ('seeds = [0, "1"]\n', r"run.toml: seeds.1: Input should be a valid integer"),
        ("seeds = [0, 1.5]\n", r"run.toml: seeds.1: Input should be a valid integer"),
        ("seeds = [1, 1]\n", r"run.toml: seeds: Value error, seeds repeat: \[1, 1\]"),
        ("seeds = [-1]\n", r"run.toml: seeds.0: Input should be greater than or equal to 0"),
        (
            '[[mixes]]\nn_harm = 0\nname = "base"\n[[mixes]]\nn_harm = 10\nname = "base"\n',
            r"run.toml: mixes: Value error, two mixes are named 'base'; give one a `name`",
        ),
    ],
)
def test_bad_seeds_and_repeated_mix_names_are_named(tmp_path, text, message):
    with pytest.raises(UsageError, match=message):
        run.load_config(_toml(tmp_path, text))


def test_run_out_sets_the_report_folder(runner, isolated_store):
    from saftool.cli import app

    result = runner.invoke(app, ["run", "--out", "elsewhere", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].endswith("report --out elsewhere --judge learned")
    shown = runner.invoke(app, ["run", "--out", "elsewhere", "--show-config"])
    assert json.loads(shown.stdout)["output"] == "elsewhere"


def test_slurm_example_asks_one_gpu_per_train_and_infer_job(isolated_store):
    from saftool.run.slurm import array_groups, request_options
    from tests.conftest import ROOT

    cfg = run.load_config(ROOT / "examples" / "study-slurm.toml")
    groups = array_groups(run.plan(cfg, Store()))
    assert [(g.kind, len(g.stages)) for g in groups] == [
        ("gen", 3), ("mix", 7), ("train", 7), ("infer", 7), ("judge", 1), ("report", 1),
    ]
    by_kind = {g.kind: request_options(cfg, g.resources) for g in groups}
    assert by_kind["train"] == ["--cpus-per-task=8", "--gres=gpu:1", "--mem=65536M", "--time=720", "--partition=gpu"]
    assert "--gres=gpu:1" not in by_kind["judge"] and "--gres=gpu:1" not in by_kind["gen"]


def test_resources_default_to_a_gpu_only_where_a_real_model_loads():
    tiny = run.RunConfig(train={"preset": "tiny"})
    assert {k: tiny.stage_resources(k).gpus for k in ("train", "infer", "judge")} == dict.fromkeys(
        ("train", "infer", "judge"), 0
    )
    real = run.RunConfig(train={"preset": "llama2-7b-lora"}, judge={"name": "hf:meta-llama/Llama-Guard-3-8B"})
    assert [real.stage_resources(k).gpus for k in ("gen", "mix", "train", "infer", "judge", "report")] == [
        0, 0, 1, 1, 1, 0,
    ]
    assert [s.id for s in run.plan(real, Store()) if s.own_process][-1] == "judge"
    cascade = run.RunConfig(judge={"name": "cascade:keyword,hf:/models/guard"})
    assert (cascade.stage_resources("judge").gpus, run.RunConfig(judge={"name": "keyword"}).stage_resources("judge").gpus) == (1, 0)
    api = run.RunConfig(train={"preset": "llama2-7b-lora"}, infer={"backend": "openai"})
    assert api.stage_resources("infer").gpus == 0


class RemoteRuntime:
    """An inference engine the plan knows only through its registry entry: it loads no model folder."""

    loads_model_dir = False


class ClassifierJudge:
    """A judge the plan knows only through its registry entry: it loads a classifier's weights."""

    loads_model = True


def test_the_plan_asks_each_engine_whether_it_loads_a_model(monkeypatch):
    from saftool.judge import JUDGES
    from saftool.runtimes import RUNTIMES

    monkeypatch.setitem(RUNTIMES.entries, "remote", f"{__name__}:RemoteRuntime")
    monkeypatch.setitem(JUDGES.entries, "classifier", f"{__name__}:ClassifierJudge")
    real = {"preset": "llama2-7b-lora"}
    assert run.RunConfig(train=real, infer={"backend": "remote"}).stage_resources("infer").gpus == 0
    assert run.RunConfig(train=real).stage_resources("infer").gpus == 1
    assert run.RunConfig(judge={"name": "cascade:learned,classifier"}).stage_resources("judge").gpus == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[resources.bogus]\ncpus = 2\n", r"run.toml: resources.bogus: unknown key"),
        ("[resources.train]\ngpu = 1\n", r"run.toml: resources.train.gpu: unknown key"),
        ("[resources.train]\ncpus = 0\n", r"run.toml: resources.train.cpus: Input should be greater than or equal to 1"),
        ("[slurm]\nqueue = \"gpu\"\n", r"run.toml: slurm.queue: unknown key"),
    ],
)
def test_unknown_stage_kind_or_resource_key_is_named(tmp_path, text, message):
    with pytest.raises(UsageError, match=message):
        run.load_config(_toml(tmp_path, text))


def test_a_cascade_judge_gets_its_model_and_store_name():
    judge = run.RunConfig.model_validate({"judge": {"name": "cascade:learned,llm", "model": "gpt-4o"}}).judge
    assert judge.argv() == ["--judge", "cascade:learned,llm", "--model", "gpt-4o", "--prompt-set", "seed"]
    assert judge.store_name == "cascade:learned,llm-seed:gpt-4o"  # the name the cascade judge writes under
