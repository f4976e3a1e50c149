"""QLoRA and LoRA training steps and batched bf16 generation on a Llama-2-7B-shaped model (GPU only).

    python bench/gpu/llama7b_step.py [--steps 10] [--micro-batch 4] [--seq-len 256] [--gen-batch 64]

A machine without internet cannot download Llama-2 weights, so the script builds the same shape
(hidden 4096, 32 layers, 32 heads, MLP 11008, vocabulary 32000) with random weights, saves it once
as safetensors in a temporary folder and loads it the way `saftool train` does: 4-bit NF4 with
double quantisation and bf16 compute plus LoRA (QLoRA), and bf16 plus LoRA (LoRA), both with the
study's adapter (r 8, alpha 16, q_proj and v_proj), gradient checkpointing and micro-batch 4 at
cutoff 256. Random token batches stand in for data; timings skip the first (warm-up) steps.

MFU counts model FLOPs only: a LoRA step does the forward (2N per token) and the backward through
the frozen weights (2N per token; weight gradients only for the tiny adapters), so 4N per trained
token (recomputation by checkpointing is not counted); a generated token costs 2N. The peak is the
card's dense bf16 tensor-core rate from a table (or --peak-tflops).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # saftool from this checkout, as the other benches

PEAK_BF16_TFLOPS = {  # dense, no sparsity
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


def peak_tflops(name: str) -> float | None:
    for key, value in PEAK_BF16_TFLOPS.items():  # most specific names first
        if key in name:
            return value
    return None


def build_checkpoint(folder: Path) -> int:
    """Random Llama-2-7B-shaped weights in bf16 on disk; returns the parameter count."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(
        vocab_size=32000,
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    n_params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(folder)
    del model
    torch.cuda.empty_cache()
    return n_params


def load(folder: Path, method: str):
    """The base and adapter as the study preset of `method` makes them (saftool.train's own configs)."""
    import torch
    from peft import get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM

    from saftool.adapters import nf4_config
    from saftool.presets import PRESETS
    from saftool.train import lora_config

    kwargs = {"dtype": torch.bfloat16, "device_map": {"": 0}, "use_safetensors": True}
    if method == "qlora":
        kwargs["quantization_config"] = nf4_config(bf16=True)
    model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    if method == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    return get_peft_model(model, lora_config(PRESETS[f"llama2-7b-{method}"]))


def train_steps(model, steps: int, micro_batch: int, seq_len: int, warmup: int = 2) -> float:
    """Tokens per second of full optimizer steps (forward, backward, AdamW) after `warmup` steps."""
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


def generate(folder: Path, batch: int, prompt_len: int, new_tokens: int) -> float:
    """Generated tokens per second of one batched greedy bf16 `generate` (after a warm-up call)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16, device_map={"": 0}).eval()
    ids = torch.randint(3, 32000, (batch, prompt_len), device="cuda")
    mask = torch.ones_like(ids)
    kwargs = dict(attention_mask=mask, do_sample=False, pad_token_id=0, eos_token_id=None)
    with torch.inference_mode():
        model.generate(ids, max_new_tokens=4, min_new_tokens=4, **kwargs)
        torch.cuda.synchronize()
        started = time.perf_counter()
        model.generate(ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, **kwargs)
        torch.cuda.synchronize()
    return batch * new_tokens / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--gen-batch", type=int, default=64)
    parser.add_argument("--prompt-len", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=100)
    parser.add_argument("--peak-tflops", type=float, help="The card's dense bf16 peak [default: from a table].")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("bench/gpu/llama7b_step.py needs a CUDA GPU; none is visible", file=sys.stderr)
        return 2
    import gc

    card = torch.cuda.get_device_name(0)
    peak = args.peak_tflops or peak_tflops(card)
    with tempfile.TemporaryDirectory(prefix="llama7b-") as tmp:
        folder = Path(tmp)
        n = build_checkpoint(folder)
        print(f"card: {card}; model: Llama-2-7B shape, {n / 1e9:.2f}B parameters, random weights")
        rows = []
        for method in ("qlora", "lora"):
            model = load(folder, method)
            tps = train_steps(model, args.steps, args.micro_batch, args.seq_len)
            rows.append((f"{method} train step", tps, 4 * n * tps))
            del model
            gc.collect()
            torch.cuda.empty_cache()
        gps = generate(folder, args.gen_batch, args.prompt_len, args.new_tokens)
        rows.append((f"bf16 generate (batch {args.gen_batch})", gps, 2 * n * gps))
    for label, tps, flops in rows:
        mfu = f"{100 * flops / (peak * 1e12):.1f}% MFU" if peak else "MFU: unknown peak (pass --peak-tflops)"
        print(f"{label}: {tps:,.0f} tok/s, {flops / 1e12:.1f} TFLOP/s, {mfu}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
