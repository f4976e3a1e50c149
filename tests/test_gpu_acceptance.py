"""The CPU-checkable parts of bench/gpu/acceptance.py (the script itself needs a CUDA GPU)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "gpu" / "acceptance.py"


@pytest.fixture(scope="module")
def acceptance():
    spec = importlib.util.spec_from_file_location("gpu_acceptance", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_acceptance"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_refuses_without_cuda(acceptance, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    assert acceptance.main([]) == 2
    assert capsys.readouterr().err == "bench/gpu/acceptance.py needs a CUDA GPU; none is visible\n"


def test_mfu_and_the_table(acceptance):
    n = 6.74e9  # Llama-2-7B's parameters
    lora = acceptance.Row("lora train step (batch 4x256)", 3000.0, 4 * n, 20.5)
    full = acceptance.Row("full train step (batch 4x256)", None, note="does not fit in 80 GiB")
    hf = acceptance.Row("hf greedy bf16 (512x100)", 20000.0, 2 * n, 30.0)
    assert lora.mfu(989.0) == pytest.approx(100 * 3000 * 4 * n / 989e12)  # 8.2%
    assert full.mfu(989.0) is None and lora.mfu(None) is None
    table = acceptance.format_table([lora, full, hf], 989.0).splitlines()
    assert table[0].split() == ["workload", "tokens/s", "MFU", "%", "peak", "GiB", "note"]
    assert table[1].split()[-3:] == ["3,000", "8.2", "20.5"]
    assert table[2][34:].split()[:3] == ["-", "-", "-"] and table[2].endswith("does not fit in 80 GiB")
    assert table[3].split()[-3:] == ["20,000", "27.3", "30.0"]


def test_the_last_line_is_the_key_ratio(acceptance):
    Row = acceptance.Row
    qlora, lora = Row("qlora train step", 1500.0), Row("lora train step", 3000.0)
    assert acceptance.key_ratio([qlora, lora]) == "ratio: qlora / lora train step tokens/s = 0.50x"
    both = [qlora, lora, Row("hf greedy bf16", 10000.0), Row("vllm greedy bf16", 35000.0)]
    assert acceptance.key_ratio(both) == "ratio: vllm / hf greedy generation = 3.50x"
    assert acceptance.key_ratio([Row("hf greedy bf16", 10000.0)]) == "ratio: not enough rows ran to form one"


def test_peak_table_takes_the_most_specific_card_name(acceptance):
    assert acceptance.peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert acceptance.peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert acceptance.peak_tflops("NVIDIA H200") == 989.0
    assert acceptance.peak_tflops("Some Other Card") is None
