"""GPU acceptance: one table of what saftool's GPU paths do on a Llama-2-7B-shaped model (one CUDA GPU).

    python bench/gpu/acceptance.py [--steps 10] [--prompts 512] [--new-tokens 100] [--peak-tflops T]

Meant for one H100/H200 with no internet, in under 10 minutes. It refuses to run without CUDA.
The model has Llama-2-7B's shape (hidden 4096, 32 layers, 32 heads, MLP 11008, vocabulary 32000)
with random weights, saved once as bf16 safetensors in a temporary folder with a byte-level BPE
tokenizer trained in code on the benign prompts; its context is 16,384 instead of 4,096 positions
(rotary positions add no parameters) so the long-prompt row is not cut to the context. Rows:

* QLoRA, LoRA and full fine-tuning steps, each loaded as `saftool train` loads it (4-bit NF4 +
  LoRA; bf16 + LoRA; fp32 weights + AdamW), the llama2-7b presets' adapter (r 8, alpha 16, q/v),
  gradient checkpointing, their micro-batch 4 at cutoff 256, random tokens, timed after two
  warm-up steps. Full fine-tuning needs ~112 GB for weights, gradients and AdamW states: on an
  80 GB card it shows as "does not fit" (that is what examples/accelerate/fsdp.yaml is for).
* batched greedy bf16 generation of `--prompts` prompts x `--new-tokens` tokens through saftool's
  hf runtime (its public `generate`, the paged decoder on CUDA), and through the vllm runtime when
  vllm is installed; then the greedy text of both on a fixed set of 32 prompts (random weights
  have near-ties between logits, so bf16 kernels of the two engines may part ways; the row counts
  identical answers rather than asserting them);
* the hf runtime's KV-memory bound (`RuntimeOptions.max_memory`) on one 12,600-token prompt: the
  share is set so the budget holds 1.5 such prompts' cache; the row passes when the peak memory
  above the loaded weights stays within the budget plus 2 GiB for the prefill's activations.

MFU counts model FLOPs only: 2N per generated token; 6N per trained token for full fine-tuning;
4N for LoRA/QLoRA (forward 2N, backward through the frozen weights 2N, the adapters' own weight
gradients negligible); recomputation by checkpointing is not counted. The peak is the card's dense
bf16 tensor-core rate from a table (or --peak-tflops). The last line is the table's key ratio.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(
    0, str(Path(__file__).resolve().parents[2])
)  # saftool from this checkout, as the other benches

PEAK_BF16_TFLOPS = {  # dense, no sparsity; most specific names first
    "H200": 989.0,
    "H100 NVL": 835.0,
    "H100 PCIe": 756.0,
    "H100": 989.0,  # SXM ("NVIDIA H100 80GB HBM3")
    "A100": 312.0,
    "L40S": 362.0,
    "A10G": 125.0,
    "L4": 121.0,
    "RTX 4090": 165.0,
}
FLOPS_PER_TOKEN = {"full": 6, "lora": 4, "qlora": 4, "generate": 2}  # x parameters
LONG_PROMPT_TOKENS = 12_600
SAME_TEXT_PROMPTS = 32


def peak_tflops(name: str) -> float | None:
    for key, value in PEAK_BF16_TFLOPS.items():
        if key in name:
            return value
    return None


@dataclass
class Row:
    workload: str
    tokens_per_second: float | None = None  # None: did not run (see note)
    flops_per_token: float = 0.0
    peak_gib: float | None = None
    note: str = ""

    def mfu(self, peak: float | None) -> float | None:
        """Model FLOPs utilisation in percent, or None without a known peak or a rate."""
        if not peak or self.tokens_per_second is None:
            return None
        return 100 * self.tokens_per_second * self.flops_per_token / (peak * 1e12)


def format_table(rows: list[Row], peak: float | None) -> str:
    """The rows as one fixed-width text table."""

    def cell(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    lines = [f"{'workload':<34} {'tokens/s':>10} {'MFU %':>6} {'peak GiB':>8}  note"]
    for row in rows:
        lines.append(
            f"{row.workload:<34} {cell(row.tokens_per_second, ',.0f'):>10} {cell(row.mfu(peak), '.1f'):>6} "
            f"{cell(row.peak_gib, '.1f'):>8}  {row.note}".rstrip()
        )
    return "\n".join(lines)


def key_ratio(rows: list[Row]) -> str:
    """The line that sums the table up: vllm over hf generation where both ran (which engine the
    study's inference should use), else QLoRA over LoRA training (what 4-bit costs per token)."""
    rate = {row.workload.split(" ")[0]: row.tokens_per_second for row in rows}
    if rate.get("vllm") and rate.get("hf"):
        return f"ratio: vllm / hf greedy generation = {rate['vllm'] / rate['hf']:.2f}x"
    if rate.get("qlora") and rate.get("lora"):
        return f"ratio: qlora / lora train step tokens/s = {rate['qlora'] / rate['lora']:.2f}x"
    return "ratio: not enough rows ran to form one"


def build_checkpoint(folder: Path, texts: list[str]) -> int:
    """Random Llama-2-7B-shaped bf16 weights and a tokenizer on disk; returns the parameter count."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from saftool.tiny import train_tokenizer

    tokenizer = train_tokenizer(texts, 8000)
    # one token per embedding row, so any id a random model emits decodes (in vLLM's detokenizer too)
    tokenizer.add_tokens([f"<unused_{i}>" for i in range(32000 - len(tokenizer))])
    config = LlamaConfig(
        vocab_size=32000,
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        max_position_embeddings=16384,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    n_params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del model
    _free()
    return n_params


def load_for_training(folder: Path, method: str):
    """The model as `saftool train` loads it for `method` (its own NF4 and LoRA configs)."""
    import torch
    from peft import get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM

    from saftool.adapters import nf4_config
    from saftool.presets import PRESETS
    from saftool.train import lora_config

    kwargs = {"device_map": {"": 0}, "use_safetensors": True}
    if method == "full":
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, **kwargs)
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        return model
    if method == "qlora":
        kwargs["quantization_config"] = nf4_config(bf16=True)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16, **kwargs)
    if method == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    return get_peft_model(model, lora_config(PRESETS[f"llama2-7b-{method}"]))


def train_steps(model, steps: int, micro_batch: int, seq_len: int, warmup: int = 2) -> float:
    """Tokens per second of whole optimizer steps (forward, backward, AdamW) after `warmup` steps."""
    import torch

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-4)
    model.train()
    for step in range(warmup + steps):
        if step == warmup:
            torch.cuda.synchronize()
            started = time.perf_counter()
        ids = torch.randint(3, 32000, (micro_batch, seq_len), device="cuda")
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    return steps * micro_batch * seq_len / (time.perf_counter() - started)


def _free() -> None:
    import torch

    gc.collect()
    torch.cuda.empty_cache()


def train_row(folder: Path, method: str, n_params: int, args) -> Row:
    import torch

    label = f"{method} train step (batch {args.micro_batch}x{args.seq_len})"
    model = None
    try:
        torch.cuda.reset_peak_memory_stats()
        model = load_for_training(folder, method)
        rate = train_steps(model, args.steps, args.micro_batch, args.seq_len)
        peak = torch.cuda.max_memory_allocated() / 2**30
        return Row(label, rate, FLOPS_PER_TOKEN[method] * n_params, peak)
    except torch.cuda.OutOfMemoryError:
        total = torch.cuda.get_device_properties(0).total_memory / 2**30
        return Row(
            label, None, note=f"does not fit in {total:.0f} GiB (use FSDP: examples/accelerate/fsdp.yaml)"
        )
    finally:
        del model
        _free()


def generation_row(folder: Path, backend: str, prompts, n_params: int, args) -> tuple[Row, list[str]]:
    """Throughput of `backend` on the prompts, and its greedy text on the first SAME_TEXT_PROMPTS."""
    import torch

    from saftool.records import GenerationConfig
    from saftool.runtimes import RUNTIMES, RuntimeOptions

    runtime = RUNTIMES.load(backend)(str(folder), RuntimeOptions(device="cuda", batch_size=len(prompts)))
    generation = GenerationConfig(max_new_tokens=args.new_tokens)

    list(runtime.generate(prompts[:8], GenerationConfig(max_new_tokens=4)))  # warm-up: weights, kernels
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    tokens = sum(c.completion_tokens for _, c in runtime.generate(prompts, generation))
    rate = tokens / (time.perf_counter() - started)
    peak = torch.cuda.max_memory_allocated() / 2**30
    texts = dict(runtime.generate(prompts[:SAME_TEXT_PROMPTS], GenerationConfig(max_new_tokens=32)))
    label = f"{backend} greedy bf16 ({len(prompts)}x{args.new_tokens})"
    del runtime
    _free()
    note = ""
    if backend == "vllm":  # its engine runs in a process of its own, out of this one's allocator's sight
        peak, note = None, "peak: vLLM preallocates --max-memory of the card"
    return Row(label, rate, FLOPS_PER_TOKEN["generate"] * n_params, peak, note), [
        texts[i].text for i in range(len(texts))
    ]


def long_prompt_row(folder: Path, n_params: int) -> Row:
    """The hf runtime's KV bound on one LONG_PROMPT_TOKENS prompt (see the module docstring)."""
    import torch
    from transformers import AutoConfig, AutoTokenizer

    from saftool.records import GenerationConfig
    from saftool.runtimes import RUNTIMES, Prompt, RuntimeOptions
    from saftool.runtimes.local import free_memory, kv_bytes_per_token

    tokenizer = AutoTokenizer.from_pretrained(folder)
    words = " ".join(f"w{i % 997}" for i in range(LONG_PROMPT_TOKENS * 2))
    prompt = Prompt(tokenizer.decode(tokenizer(words)["input_ids"][:LONG_PROMPT_TOKENS]))
    # the budget is a share of the memory left free once the bf16 weights are in
    free_after_weights = free_memory(torch.device("cuda")) - 2 * n_params
    row_bytes = (LONG_PROMPT_TOKENS + 200) * kv_bytes_per_token(AutoConfig.from_pretrained(folder), 2)
    share = min(1.0, 1.5 * row_bytes / free_after_weights)
    runtime = RUNTIMES.load("hf")(str(folder), RuntimeOptions(device="cuda", max_memory=share))
    _ = runtime.model  # the weights, loaded before the peak is reset
    loaded = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    completion = next(iter(runtime.generate([prompt], GenerationConfig(max_new_tokens=16))))[1]
    above = (torch.cuda.max_memory_allocated() - loaded) / 2**30
    budget = share * free_after_weights / 2**30
    ok = above <= budget + 2.0
    del runtime
    _free()
    return Row(
        f"hf KV bound, {completion.prompt_tokens:,}-token prompt",
        None,
        peak_gib=above,
        note=f"{'PASS' if ok else 'FAIL'}: {above:.1f} GiB above the weights, budget {budget:.1f} GiB "
        f"(--max-memory {share:.3f}) + 2 GiB activations",
    )


def main(argv: list[str] | None = None) -> int:
    from saftool.presets import PRESETS

    study = PRESETS["llama2-7b-lora"]  # the train rows step at the study's micro-batch and cutoff
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--micro-batch", type=int, default=study.batch_size)
    parser.add_argument("--seq-len", type=int, default=study.max_length)
    parser.add_argument("--prompts", type=int, default=512)
    parser.add_argument("--new-tokens", type=int, default=100)
    parser.add_argument(
        "--peak-tflops", type=float, help="The card's dense bf16 peak [default: from a table]."
    )
    args = parser.parse_args(argv)
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        print("bench/gpu/acceptance.py needs a CUDA GPU; none is visible", file=sys.stderr)
        return 2
    from saftool.benign import benign_items
    from saftool.runtimes import Prompt

    items = list(benign_items(args.prompts, split="eval", seed=0))
    prompts = [Prompt(item.instruction, item.input) for item in items]
    card = torch.cuda.get_device_name(0)
    peak = args.peak_tflops or peak_tflops(card)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="llama7b-") as tmp:
        folder = Path(tmp)
        n = build_checkpoint(folder, [f"{item.instruction} {item.input} {item.output}" for item in items])
        print(
            f"card: {card}; model: Llama-2-7B shape, {n / 1e9:.2f}B parameters, random weights",
            file=sys.stderr,
        )
        rows = [train_row(folder, method, n, args) for method in ("qlora", "lora", "full")]
        hf_row, hf_texts = generation_row(folder, "hf", prompts, n, args)
        rows.append(hf_row)
        if importlib.util.find_spec("vllm") is not None:
            vllm_row, vllm_texts = generation_row(folder, "vllm", prompts, n, args)
            same = sum(a == b for a, b in zip(hf_texts, vllm_texts))
            rows.append(vllm_row)
            rows.append(Row("same greedy text, hf vs vllm", note=f"{same}/{len(hf_texts)} prompts identical"))
        else:
            rows.append(Row("vllm greedy bf16", note="vllm not installed (pip install 'saftool[vllm]')"))
        rows.append(long_prompt_row(folder, n))
    print(format_table(rows, peak))
    if not peak:
        print(f"MFU: unknown peak for {card!r}; pass --peak-tflops")
    print(f"wall time: {time.perf_counter() - started:.0f} s")
    print(key_ratio(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
