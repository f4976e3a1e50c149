from __future__ import annotations

import json

from saftool.cli import app
from saftool.io import write_records
from saftool.store import Store
from tests.modelfix import write_mix


def test_train_prints_the_run_record_on_stdout(runner, isolated_store):
    write_mix(Store(isolated_store))
    result = runner.invoke(app, ["train", "--mix", "m", "--preset", "smoke", "--name", "small", "--lr", "0.002"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["name"] == "small" and record["mix"] == "m" and record["config"]["lr"] == 0.002
    assert (isolated_store / "models" / "small" / "train_run.json").is_file()


def test_unknown_mix(runner, isolated_store):
    write_mix(Store(isolated_store), "alpha")
    result = runner.invoke(app, ["train", "--mix", "beta", "--preset", "smoke"])
    assert result.exit_code == 2
    assert result.stderr == "error: unknown mix 'beta'; known: alpha\n"


def test_empty_mix(runner, isolated_store):
    store = Store(isolated_store)
    write_records([], store.mix_path("empty"))
    result = runner.invoke(app, ["train", "--mix", "empty", "--preset", "smoke"])
    assert result.exit_code == 1
    assert result.stderr == f"error: mix 'empty' is empty ({store.mix_path('empty')}): nothing to train on\n"
    assert not (isolated_store / "models" / "empty").exists()


def test_bad_settings(runner, isolated_store):
    write_mix(Store(isolated_store))
    result = runner.invoke(app, ["train", "--mix", "m", "--preset", "huge"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: unknown preset 'huge'; choose one of: llama2-7b-qlora, llama2-7b-lora, llama2-7b-full, "
        "llama3-8b-instruct-lora, smollm2-135m-lora, tiny, smoke\n"
    )
    result = runner.invoke(app, ["train", "--mix", "m", "--method", "dora"])
    assert result.exit_code == 2 and result.stderr.startswith("error: bad training setting method:")
    result = runner.invoke(app, ["train", "--mix", "m", "--base-model", "./missing-model"])
    assert result.exit_code == 1
    assert result.stderr == "error: base model path './missing-model' does not exist\n"
    assert Store(isolated_store).model_names() == []


def test_effective_batch_that_does_not_divide(runner, isolated_store):
    write_mix(Store(isolated_store))
    result = runner.invoke(app, ["train", "--mix", "m", "--preset", "smoke", "--effective-batch", "20"])
    assert result.exit_code == 2
    assert result.stderr == "error: --effective-batch 20 is not divisible by 1 process(es) x --batch-size 16 = 16\n"
    assert Store(isolated_store).model_names() == [] and not (isolated_store / "models" / ".m.ckpt").exists()
    result = runner.invoke(app, ["train", "--mix", "m", "--preset", "smoke", "--system", "Be safe."])
    assert result.exit_code == 2 and result.stderr == "error: bad training settings: a system message needs template chat\n"
    result = runner.invoke(app, ["train", "--mix", "m", "--preset", "smoke", "--lora-layers", "1"])
    assert result.exit_code == 2 and result.stderr == "error: bad training settings: lora_layers needs method lora or qlora\n"
    assert Store(isolated_store).model_names() == []


def test_target_modules_the_architecture_lacks(runner, isolated_store, tmp_path):
    from tests.basefix import build_random_base

    base = build_random_base(tmp_path / "gpt2", arch="gpt2")
    write_mix(Store(isolated_store))
    result = runner.invoke(
        app, ["train", "--mix", "m", "--base-model", str(base), "--target-modules", "q_proj,v_proj", "--device", "cpu"]
    )
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: --target-modules q_proj,v_proj: no such layer in {str(base)!r}; "
        "LoRA can target: c_attn, c_fc, c_proj, lm_head, wpe, wte\n"
    )
    assert Store(isolated_store).model_names() == [] and not (isolated_store / "models" / ".m.ckpt").exists()
