from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from saftool.errors import MissingDependencyError, SaftoolError, UsageError
from saftool.io import write_records
from saftool.presets import PRESETS, resolve_config
from saftool.store import Store
from saftool.train import checkpoint_complete, checkpoint_dir, train
from tests.conftest import ROOT
from tests.modelfix import write_mix


def test_full_training_writes_a_loadable_model_and_a_run_record(store):
    from transformers import AutoModelForCausalLM

    write_mix(store)
    run = train("m", resolve_config("smoke"), store=store, preset="smoke")
    model_dir = store.model_dir("m")
    assert (model_dir / "model.safetensors").is_file() and (model_dir / "tokenizer.json").is_file()
    assert not list(model_dir.glob("*.bin"))
    assert not checkpoint_dir(store, "m").exists()
    saved = json.loads((model_dir / "train_run.json").read_text())
    assert saved["config_hash"] == run.config_hash and saved["method"] == "full" and saved["preset"] == "smoke"
    assert run.tokens_seen > 0 and run.tokens_per_second > 0 and run.loss_curve
    assert {"torch", "transformers", "trl"} <= set(run.versions)
    assert AutoModelForCausalLM.from_pretrained(model_dir).config.model_type == "llama"
    # the same mix and config again: nothing to do
    again = train("m", resolve_config("smoke"), store=store, preset="smoke")
    assert again.wall_seconds == run.wall_seconds


@pytest.mark.parametrize("method", ["lora", "qlora"])
def test_adapter_training_names_its_base(store, smoke_base, method):
    write_mix(store)
    config = resolve_config("smoke", method=method, base_model=str(smoke_base), lora_target_modules=("q_proj", "v_proj"))
    run = train("m", config, name=f"m-{method}", store=store)
    model_dir = store.model_dir(f"m-{method}")
    adapter = json.loads((model_dir / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(smoke_base.resolve())
    assert (model_dir / "adapter_model.safetensors").is_file()
    assert run.method == method and run.base_model == str(smoke_base)
    if method == "qlora":
        assert "bitsandbytes" in run.versions


def test_unknown_mix_lists_the_known_ones(store):
    write_mix(store, "alpha")
    with pytest.raises(UsageError, match=r"unknown mix 'beta'; known: alpha"):
        train("beta", resolve_config("smoke"), store=store)


def test_empty_mix_is_an_error_and_leaves_no_model(store):
    write_records([], store.mix_path("empty"))
    with pytest.raises(SaftoolError, match="mix 'empty' is empty"):
        train("empty", resolve_config("smoke"), store=store)
    assert store.model_names() == []


def test_base_model_errors(store, tmp_path):
    write_mix(store)
    with pytest.raises(SaftoolError, match="base model path '/nope/llama' does not exist"):
        train("m", resolve_config("smoke", base_model="/nope/llama"), store=store)
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text("{}")
    (bare / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(SaftoolError, match="holds no .safetensors weights"):
        train("m", resolve_config("smoke", base_model=str(bare)), store=store)
    with pytest.raises(UsageError, match="--method lora needs --base-model"):
        train("m", resolve_config("smoke", method="lora"), store=store)
    assert not store.model_dir("m").exists()


def test_gpu_asked_for_without_one(store):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    write_mix(store)
    with pytest.raises(SaftoolError, match="no CUDA device is visible"):
        train("m", resolve_config("smoke", device="cuda"), store=store)
    with pytest.raises(SaftoolError, match="no CUDA device is visible"):
        train("m", resolve_config("llama2-7b-qlora"), store=store)
    assert not store.model_dir("m").exists()


def test_qlora_without_bitsandbytes_gives_the_install_line(store, smoke_base, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real(name, *a))
    write_mix(store)
    with pytest.raises(MissingDependencyError, match="pip install bitsandbytes"):
        train("m", resolve_config("smoke", method="qlora", base_model=str(smoke_base)), store=store)


def test_study_presets_carry_the_safety_tuned_llamas_defaults():
    for name in ("llama2-7b-qlora", "llama2-7b-lora"):
        p = PRESETS[name]
        assert (p.lora_r, p.lora_alpha, p.epochs, p.lr, p.max_length, p.effective_batch) == (8, 16, 3, 3e-4, 256, 128)
    assert PRESETS["llama2-7b-qlora"].method == "qlora" and PRESETS["llama2-7b-lora"].method == "lora"


def test_full_and_instruct_presets_carry_their_sources_settings():
    full = PRESETS["llama2-7b-full"]  # Stanford Alpaca's full fine-tuning
    assert (full.method, full.lr, full.lr_scheduler, full.warmup_steps, full.weight_decay, full.epochs) == (
        "full", 2e-5, "cosine", 0.03, 0.0, 3
    )
    instruct = PRESETS["llama3-8b-instruct-lora"]  # meta-llama/llama-cookbook's defaults
    assert (instruct.lora_r, instruct.lora_alpha, instruct.lr, instruct.weight_decay, instruct.template) == (
        8, 32, 1e-4, 0.0, "chat"
    )
    assert full.effective_batch == instruct.effective_batch == 128


def test_a_base_model_without_a_preset_gets_real_model_defaults():
    tiny = PRESETS["tiny"]
    lora = resolve_config(base_model="org/model")
    assert (lora.method, lora.lr, lora.weight_decay, lora.epochs, lora.max_length) == ("lora", 3e-4, 0.0, 3, 256)
    full = resolve_config(base_model="org/model", method="full")
    assert (full.lr, full.weight_decay, full.lr_scheduler) == (2e-5, 0.0, "cosine")
    for config in (lora, full, resolve_config(base_model="org/model", method="qlora")):
        assert config.lr != tiny.lr and config.weight_decay != tiny.weight_decay and config.tiny is None
        assert config.effective_batch == 128 and config.device == "auto"
    assert resolve_config().lr == tiny.lr  # no base model: the tiny preset, as before
    # warm-up is a share of the run, the study's 100 of 1,219 steps: a 30-step run is not all warm-up
    assert lora.warmup_steps == resolve_config(base_model="org/model", method="qlora").warmup_steps == 0.08
    assert PRESETS["llama2-7b-lora"].warmup_steps == 100  # the study's own recipe keeps its steps
    smol = PRESETS["smollm2-135m-lora"]
    assert (smol.base_model, smol.method, smol.template, smol.lora_target_modules) == (
        "smollm2-135m", "lora", "chat", ("all-linear",)
    )
    assert 0 < smol.warmup_steps < 1


def test_effective_batch_keeps_the_global_batch_whatever_the_processes():
    config = resolve_config(base_model="org/model")  # global batch 128, micro-batch 4
    assert [config.accumulation_steps(n) for n in (1, 2, 4, 8)] == [32, 16, 8, 4]
    assert resolve_config("smoke", grad_accum=3).accumulation_steps(2) == 3  # an explicit accumulation stays
    assert resolve_config("llama2-7b-lora", grad_accum=8).effective_batch is None
    with pytest.raises(UsageError, match=r"--effective-batch 100 is not divisible by 8 process\(es\) x --batch-size 4 = 32"):
        resolve_config(base_model="org/model", effective_batch=100).accumulation_steps(8)
    with pytest.raises(UsageError, match="give effective_batch or grad_accum, not both"):
        resolve_config("smoke", effective_batch=32, grad_accum=2)


@pytest.mark.slow
def test_resume_after_the_training_process_is_killed(isolated_store):
    store = Store(isolated_store)
    write_mix(store, n_benign=200, n_harm=40)
    cmd = [sys.executable, "-m", "saftool", "train", "--mix", "m", "--preset", "smoke", "--epochs", "6"]
    env = {**os.environ, "SAFTOOL_STORE": str(isolated_store), "SAFTOOL_NO_PROGRESS": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ckpt = checkpoint_dir(store, "m")
    deadline = time.monotonic() + 120
    # wait for one whole checkpoint; the kill may still tear a later one, which resume must skip
    while not any(checkpoint_complete(p) for p in ckpt.glob("checkpoint-*")) and proc.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not store.model_dir("m").exists(), "a killed run must leave no model directory"
    done = subprocess.run([*cmd, "--resume"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resuming from checkpoint-" in done.stderr
    record = json.loads(done.stdout)
    steps = [p["step"] for p in record["loss_curve"]]
    assert steps == sorted(set(steps)) and steps[0] == 2  # the curve from before the kill is kept
    assert (store.model_dir("m") / "model.safetensors").is_file() and not ckpt.exists()


@pytest.mark.slow
def test_two_process_launch_trains_one_model(isolated_store):
    """The multi-GPU path on the CPU: torchrun starts two processes (DDP over gloo), as `accelerate
    launch` does on GPUs; the main one builds the base and writes the one model directory."""
    store = Store(isolated_store)
    write_mix(store, n_benign=200, n_harm=40)
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    cmd = [torchrun, "--nproc_per_node", "2", "-m", "saftool", "train", "--mix", "m", "--preset", "smoke"]
    env = {**os.environ, "SAFTOOL_STORE": str(isolated_store), "SAFTOOL_NO_PROGRESS": "1"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("building a tiny Llama") == 1
    record = json.loads(done.stdout)  # only the main process prints the record
    # each optimizer step now takes a batch per process: half the steps of one process
    one_process_steps = -(-240 // PRESETS["smoke"].batch_size)
    assert record["loss_curve"][-1]["step"] <= -(-one_process_steps // 2)
    assert (store.model_dir("m") / "model.safetensors").is_file()
    assert not checkpoint_dir(store, "m").exists()


def _kill_tree(pid: int) -> None:
    """SIGKILL `pid` and every process below it, children first (read from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    order, todo = [], [pid]
    while todo:
        order.append(todo.pop())
        todo.extend(children.get(order[-1], []))
    for victim in reversed(order):
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)


@pytest.mark.slow
def test_fsdp_run_saves_full_weights_and_resumes_after_a_kill(isolated_store):
    """FSDP2 over gloo with two processes, configured by examples/accelerate/fsdp.yaml as
    `accelerate launch` would (tests/fsdp_cpu.py lifts accelerate's GPU-only gate):
    the checkpoints are torch.distributed.checkpoint shards, which resume must take as complete,
    and the final save gathers them into one loadable safetensors model."""
    from transformers import AutoModelForCausalLM

    store = Store(isolated_store)
    write_mix(store, n_benign=200, n_harm=40)
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    cmd = [torchrun, "--nproc_per_node", "2", "-m", "tests.fsdp_cpu", "train", "--mix", "m", "--preset", "smoke"]
    from tests.fsdp_cpu import launch_env

    fsdp = launch_env(os.path.join(ROOT, "examples", "accelerate", "fsdp.yaml"), 2)  # the shipped config
    env = {**os.environ, **fsdp, "SAFTOOL_STORE": str(isolated_store), "SAFTOOL_NO_PROGRESS": "1"}
    proc = subprocess.Popen([*cmd, "--epochs", "2"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ckpt = checkpoint_dir(store, "m")
    deadline = time.monotonic() + 240
    while not any(checkpoint_complete(p) for p in ckpt.glob("checkpoint-*")) and proc.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.2)
    _kill_tree(proc.pid)  # torchrun's workers run in sessions of their own: kill them by pid
    proc.wait()
    kept = [p for p in ckpt.glob("checkpoint-*") if checkpoint_complete(p)]
    assert kept and all((p / "pytorch_model_fsdp_0" / ".metadata").is_file() for p in kept)
    assert not any((p / "model.safetensors").exists() for p in kept)  # sharded: no single weights file
    assert not store.model_dir("m").exists()
    done = subprocess.run([*cmd, "--epochs", "2", "--resume"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming from checkpoint-" in done.stderr
    record = json.loads(done.stdout)
    assert record["processes"] == 2 and record["global_batch"] == 2 * PRESETS["smoke"].batch_size
    steps = [p["step"] for p in record["loss_curve"]]
    assert steps == sorted(set(steps)) and steps[0] == 2  # the curve from before the kill is kept
    model = AutoModelForCausalLM.from_pretrained(store.model_dir("m"))
    assert model.config.num_hidden_layers == PRESETS["smoke"].tiny.num_hidden_layers
    assert not ckpt.exists()


def test_a_final_save_without_weights_registers_no_model(store, monkeypatch):
    """As FSDP's sharded state dict type or ZeRO-3 without 16-bit gathering would leave it."""
    import saftool.train.run as train_module

    def save_config_only(trainer, folder):
        trainer.model.config.save_pretrained(str(folder))

    monkeypatch.setattr(train_module, "save_final_model", save_config_only)
    write_mix(store, n_benign=20, n_harm=4)
    with pytest.raises(SaftoolError, match=r"the final save wrote no complete weights to .*\(config.json\); nothing registered"):
        train("m", resolve_config("smoke"), store=store)
    assert not store.model_dir("m").exists() and store.model_names() == []


@pytest.fixture
def no_weights_load(monkeypatch):
    """Fail the test if any model weights are loaded."""
    from transformers import AutoModelForCausalLM

    def refuse(*args, **kwargs):
        raise AssertionError("weights were loaded before the bad input was reported")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", refuse)


def _nothing_written(store: Store, name: str = "m") -> bool:
    return not store.model_dir(name).exists() and not checkpoint_dir(store, name).exists()


def test_bad_real_model_settings_fail_before_weights_load(store, chat_base, plain_base, no_weights_load, monkeypatch):
    write_mix(store)
    base = dict(base_model=str(chat_base), device="cpu")
    with pytest.raises(UsageError, match=r"--effective-batch 6 is not divisible by 1 process\(es\) x --batch-size 4 = 4"):
        train("m", resolve_config(**base, effective_batch=6), store=store)
    assert _nothing_written(store)
    with pytest.raises(UsageError) as bad_targets:
        train("m", resolve_config(**base, lora_target_modules=("q_proj", "c_attn")), store=store)
    assert str(bad_targets.value).startswith("--target-modules c_attn: no such layer in")
    assert "LoRA can target: down_proj, embed_tokens, gate_proj, k_proj, lm_head, o_proj, q_proj, up_proj, v_proj" in str(
        bad_targets.value
    )
    assert _nothing_written(store)
    with pytest.raises(UsageError, match="--template chat: the tokenizer of .* has no chat template"):
        train("m", resolve_config(base_model=str(plain_base), device="cpu", template="chat"), store=store)
    assert _nothing_written(store)
    with pytest.raises(UsageError, match="--template chat needs --base-model"):
        train("m", resolve_config("smoke", template="chat"), store=store)
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")  # as `accelerate launch` with an FSDP config sets it
    with pytest.raises(UsageError, match="--method qlora under FSDP needs CUDA GPUs"):
        train("m", resolve_config(**base, method="qlora"), store=store)
    assert _nothing_written(store)


def test_chat_lora_run_records_template_processes_and_global_batch(store, chat_base):
    write_mix(store, n_benign=20, n_harm=4)
    config = resolve_config(base_model=str(chat_base), device="cpu", template="chat", system="Be safe.", effective_batch=8)
    run = train("m", config, store=store)
    assert (run.template, run.system, run.processes, run.global_batch, run.method) == ("chat", "Be safe.", 1, 8, "lora")
    assert (store.model_dir("m") / "adapter_model.safetensors").is_file()
