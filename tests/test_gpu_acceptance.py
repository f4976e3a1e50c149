"""bench/gpu/acceptance.py without a GPU: its --plan (run as CI runs it), the table's arithmetic, the
ratio line, the card table and the random QLoRA adapter the hf-nf4 row loads."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu" / "acceptance.py"


@pytest.fixture(scope="module")
def acceptance():
    spec = importlib.util.spec_from_file_location("gpu_acceptance", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_acceptance"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def _plan(card: str, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, str(SCRIPT), "--plan", "--card", card, "--vllm", *extra]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("card", ["h100", "h200"])
def test_plan_fits_the_ten_minutes_on_h100_and_h200(card):
    """The budgets (FLOP and byte counts at pessimistic shares of the card's peak and bandwidth, plus
    disk reads, quantisation and vLLM's start) of every row, vllm included, sum to under 600 s."""
    done = _plan(card)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    rows = {line.split()[0]: line for line in lines[3:-1]}
    assert list(rows) == ["build", "qlora", "lora", "full", "hf", "hf-nf4", "vllm", "hf-kv"]
    total = float(lines[-1].split()[2])
    assert total <= 600 and lines[-1].endswith("within --budget-s 600")
    gib = {key: float(line[50:56]) for key, line in rows.items()}
    seconds = {key: float(line[57:66]) for key, line in rows.items()}
    assert sum(seconds.values()) == pytest.approx(total, abs=len(seconds))  # each budget is rounded
    assert 4 < gib["qlora"] < 7 and 13 < gib["lora"] < 16 and 100 < gib["full"] < 104
    # fp32 weights, gradients and AdamW states (16 bytes x 6.74B) fit an H200, not an H100
    assert ("DOES NOT FIT" in rows["full"]) == (card == "h100")
    # transformers' own paged-cache sizing for the card: on an H100 the 512 prompts' cache fills
    # --max-memory of what the weights leave, on an H200 it holds them all
    assert ("fills --max-memory" in rows["hf"]) == (card == "h100") and "paged cache" in rows["hf-nf4"]
    assert "N for MFU 6.61B" in lines[1]  # 6.74B less the 131M-parameter input embedding


def test_plan_says_when_the_budget_is_over():
    done = _plan("h100", "--budget-s", "300")
    assert done.returncode == 1 and done.stdout.splitlines()[-1].endswith("OVER --budget-s 300")


def test_refuses_without_cuda(acceptance, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    assert acceptance.main([]) == 2
    assert "needs a CUDA GPU; none is visible (--plan runs without one)" in capsys.readouterr().err


def test_mfu_and_the_rows(acceptance):
    n = 6.61e9  # Llama-2-7B less its input embedding
    lora = acceptance.Row("lora", "lora train step (batch 4x256)", 3000.0, 4 * n, 20.5)
    full = acceptance.Row("full", "full train step (batch 4x256)", None, note="does not fit in 79 GiB")
    hf = acceptance.Row("hf", "hf greedy bf16 (512x100)", 20000.0, 2 * n, 30.0)
    assert lora.mfu(989.0) == pytest.approx(100 * 3000 * 4 * n / 989e12)  # 8.0%
    assert full.mfu(989.0) is None and lora.mfu(None) is None
    assert acceptance.HEADER.split() == ["workload", "tokens/s", "MFU", "%", "peak", "GiB", "note"]
    assert acceptance.format_row(lora, 989.0).split()[-3:] == ["3,000", "8.0", "20.5"]
    line = acceptance.format_row(full, 989.0)
    assert line[38:].split()[:3] == ["-", "-", "-"] and line.endswith("does not fit in 79 GiB")
    assert acceptance.format_row(hf, 989.0).split()[-3:] == ["20,000", "26.7", "30.0"]


def test_a_failing_row_prints_its_error_and_the_next_runs(acceptance):
    def boom():
        raise MemoryError("Memory footprint 90 GiB is more than available memory\nsecond line")

    row = acceptance.guarded("hf", "hf greedy bf16 (512x100)", boom, 79.1)
    assert row.tokens_per_second is None
    assert row.note == "ERROR MemoryError: Memory footprint 90 GiB is more than available memory"
    ok = acceptance.guarded("hf", "hf", lambda: acceptance.Row("hf", "hf", 5.0), 79.1)
    assert ok.tokens_per_second == 5.0


def test_the_ratio_line_reads_rows_by_key(acceptance):
    Row = acceptance.Row
    qlora, lora = Row("qlora", "qlora train step", 1500.0), Row("lora", "lora train step", 3000.0)
    assert acceptance.key_ratio([qlora, lora]) == "ratio: qlora / lora train step tokens/s = 0.50x"
    # the KV-bound row comes last and has no rate: it must not hide the hf row's
    both = [qlora, lora, Row("hf", "hf greedy bf16", 10000.0), Row("hf-nf4", "hf nf4+adapter greedy", 4000.0),
            Row("vllm", "vllm greedy bf16", 35000.0), Row("hf-kv", "hf KV bound, 12,600-token prompt")]
    assert acceptance.key_ratio(both) == "ratio: vllm / hf greedy generation = 3.50x"
    assert acceptance.key_ratio([Row("hf", "hf greedy bf16", 1e4)]) == "ratio: not enough rows ran to form one"


@pytest.mark.parametrize(
    "name, key",
    [
        ("NVIDIA H100 80GB HBM3", "h100"),
        ("NVIDIA H100 PCIe", "h100-pcie"),
        ("NVIDIA H100 NVL", "h100-nvl"),
        ("NVIDIA H200", "h200"),
        ("NVIDIA H200 NVL", "h200-nvl"),
        ("NVIDIA A100-SXM4-80GB", "a100"),
        ("NVIDIA GH200 480GB", None),  # not an H200: its peak is not guessed
        ("Some Other Card", None),
    ],
)
def test_the_card_found_by_its_name(acceptance, name, key):
    card = acceptance.find_card(name)
    assert (card.key if card else None) == key


def test_peaks_of_the_nvl_cards_are_their_own(acceptance):
    peaks = {card.key: card.peak_tflops for card in acceptance.CARDS}
    assert peaks == {"h200-nvl": 835.0, "h200": 989.0, "h100-nvl": 835.0, "h100-pcie": 756.0, "h100": 989.0,
                     "a100": 312.0}


def test_the_random_adapter_loads_onto_its_base_with_peft(acceptance, tmp_path):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4)
    AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path / "base")
    acceptance.write_random_adapter(tmp_path / "adapter", tmp_path / "base", config)
    saved = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tmp_path / "base"), tmp_path / "adapter")
    loaded = {k.replace(".default", ""): v for k, v in model.state_dict().items() if "lora_" in k}
    assert set(loaded) == set(saved) and len(saved) == 2 * 2 * 2  # layers x (q, v) x (A, B)
    assert all(torch.equal(loaded[k], saved[k]) for k in saved)


@pytest.fixture(scope="module")
def small_base(tmp_path_factory):
    """A tool-built smoke-sized Llama: the rows' own code runs on it on the CPU."""
    from saftool.presets import PRESETS
    from saftool.tiny import build_base
    from saftool.train import training_texts
    from tests.modelfix import mix_items

    return build_base(training_texts(mix_items()), PRESETS["smoke"].tiny, tmp_path_factory.mktemp("base") / "small")


def _row_args():
    import argparse

    defaults = {"steps": 2, "micro_batch": 2, "seq_len": 96, "prompts": 6, "new_tokens": 4, "max_memory": 0.8}
    return argparse.Namespace(**defaults)


def test_the_train_row_times_saftools_own_trainer(acceptance, small_base, monkeypatch):
    """The row's code on the CPU: make_trainer's model for the lora preset, stepped to exactly
    warm-up + steps optimizer steps, timed from the first step after warm-up."""
    import saftool.train

    built = []
    make = saftool.train.make_trainer
    monkeypatch.setattr(saftool.train, "make_trainer", lambda *a, **k: built.append(make(*a, **k)) or built[-1])
    from transformers import AutoConfig

    shape = acceptance.Shape.of(AutoConfig.from_pretrained(small_base))
    texts = [f"text number {i} " * 20 for i in range(8)]
    row = acceptance.train_row(small_base, "lora", shape, texts, _row_args(), device="cpu")
    assert row.key == "lora" and row.workload == "lora train step (batch 2x96)"
    assert row.tokens_per_second > 0 and row.flops_per_token == 4 * shape.n_mfu and row.peak_gib is None
    (trainer,) = built
    assert trainer.state.global_step == acceptance.WARMUP_STEPS + 2
    assert trainer.state.num_input_tokens_seen == (acceptance.WARMUP_STEPS + 2) * 2 * 96  # every example cut to 96
    assert type(trainer.model).__name__.startswith("Peft")  # TRL wrapped the base with the preset's adapter


def test_the_generation_row_runs_the_hf_runtime(acceptance, small_base):
    from transformers import AutoConfig

    from saftool.runtimes import Prompt

    shape = acceptance.Shape.of(AutoConfig.from_pretrained(small_base))
    prompts = [Prompt(f"Say {w}.") for w in ("one", "two", "three", "four", "five", "six")]
    answers: dict = {}
    row = acceptance.generation_row(str(small_base), "hf", "hf greedy", prompts, shape, _row_args(),
                                    answers, device="cpu")
    assert row.key == "hf" and row.tokens_per_second > 0 and row.flops_per_token == 2 * shape.n_mfu
    assert len(answers["hf"]) == len(prompts)
    assert acceptance.same_text_row(answers).note == "needs both the hf and the vllm row"
    answers["vllm"] = list(answers["hf"])
    assert acceptance.same_text_row(answers).note == "6/6 prompts identical"
