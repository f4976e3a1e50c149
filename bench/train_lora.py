"""`train`'s LoRA tokens per second against TRL SFTTrainer's defaults, on a real model.

    python bench/train_lora.py [--model DIR] [--examples 256] [--threads N]

The model is SmolLM2-135M-Instruct, found as bench/infer_generate.py finds it (exits 0 saying so
without one). Both sides train the same LoRA adapter (`train`'s defaults for a base model: r 8,
alpha 16, dropout 0.05 on q_proj and v_proj) for one epoch on the same `--examples` examples of the
study-sized mix of bench/tinysetup.py, with answer-only loss. The baseline is `SFTConfig` left at its
defaults (batch 8, gradient checkpointing, bf16 autocast where the CPU has it, max_length 1024) apart
from output and logging switches; `train` runs its own trainer (`make_trainer`) with its defaults for
a base model on this CPU. Each side's tokens are the tokens of the examples it trained on (the same
examples, tokenized the same way), over the time of `trainer.train()`. The load average is printed
because the box is shared. Last line: `train_lora: N.Nx`.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infer_generate import model_dir  # noqa: E402
from tinysetup import build_store, mix_items  # noqa: E402

from saftool.presets import resolve_config  # noqa: E402
from saftool.train import lora_config, make_trainer, prompt_completion_dataset  # noqa: E402


def trained_tokens_per_second(trainer) -> tuple[float, int, float]:
    """(tokens/s, tokens, seconds) of one `trainer.train()`, counting every token of the examples trained on."""
    tokens = sum(len(ids) for ids in trainer.train_dataset["input_ids"]) * trainer.args.num_train_epochs
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    return tokens / seconds, int(tokens), seconds


def trl_defaults(items, base: Path, out: Path, config):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(
        output_dir=str(out),
        num_train_epochs=1,
        report_to=[],
        save_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
    )
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(base),
        args=args,
        train_dataset=prompt_completion_dataset(items),
        processing_class=AutoTokenizer.from_pretrained(base),
        peft_config=lora_config(config),
    )
    print(
        f"TRL defaults: batch {args.per_device_train_batch_size}, bf16 {args.bf16}, gradient checkpointing "
        f"{args.gradient_checkpointing}, max_length {args.max_length}, padding_free {args.padding_free}"
    )
    return trained_tokens_per_second(trainer)


def ours(items, base: Path, out: Path, config):
    trainer = make_trainer(config, items, str(base), out, False, 1, config.accumulation_steps(1))
    args = trainer.args
    print(
        f"saftool train: batch {args.per_device_train_batch_size}, bf16 {args.bf16}, gradient checkpointing "
        f"{args.gradient_checkpointing}, max_length {args.max_length}, {type(trainer).__name__}"
    )
    return trained_tokens_per_second(trainer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="Model directory [default: SmolLM2-135M-Instruct].")
    parser.add_argument(
        "--examples", type=int, default=256, help="Examples each side trains on [default: 256]."
    )
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="torch threads [default: every core]."
    )
    args = parser.parse_args()
    import torch

    base = model_dir(args.model)
    if base is None:
        return  # model_dir said why
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="bench-lora-"))
    items = mix_items(build_store(work / "store"))
    items = random.Random(0).sample(items, min(args.examples, len(items)))
    config = resolve_config(None, base_model=str(base), method="lora", epochs=1)
    print(f"model: {base}; {len(items)} examples of the bench mix, 1 epoch; threads: {args.threads}")
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    base_tps, base_tokens, base_s = trl_defaults(items, base, work / "trl-out", config)
    print(f"TRL SFTTrainer defaults: {base_tokens} tokens in {base_s:.1f}s = {base_tps:.0f} tok/s")
    our_tps, our_tokens, our_s = ours(items, base, work / "ours", config)
    print(
        f"saftool train (LoRA defaults for a base model): {our_tokens} tokens in {our_s:.1f}s = {our_tps:.0f} tok/s"
    )
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"train_lora: {our_tps / base_tps:.1f}x")


if __name__ == "__main__":
    main()
