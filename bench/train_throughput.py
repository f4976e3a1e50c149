"""`train`'s tokens per second against TRL SFTTrainer's defaults, same model, mix and machine.

    python bench/train_throughput.py [--epochs 1]

Both sides train the same tool-built tiny Llama (same tokenizer, same random init) on the same
study-sized mix (2,950 examples) with answer-only loss, and count non-padding tokens the same way.
The baseline is `SFTConfig` left at its defaults (batch 8, gradient checkpointing on, bf16 autocast,
max_length 1024) apart from output and logging switches; `train` uses the `tiny` preset. Last line:
`train_throughput: N.Nx`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tinysetup import build_store, mix_items  # noqa: E402

from saftool.presets import resolve_config  # noqa: E402
from saftool.tiny import build_base  # noqa: E402
from saftool.train import prompt_completion_dataset, train, training_texts  # noqa: E402


def trl_defaults(items, base: Path, out: Path, epochs: float) -> float:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(
        output_dir=str(out),
        num_train_epochs=epochs,
        report_to=[],
        save_strategy="no",
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
        include_num_input_tokens_seen="non_padding",
    )
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(base),
        args=args,
        train_dataset=prompt_completion_dataset(items),
        processing_class=AutoTokenizer.from_pretrained(base),
    )
    started = time.perf_counter()
    trainer.train()
    return trainer.state.num_input_tokens_seen / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=float, default=1.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    store = build_store(work / "store")
    items = mix_items(store)
    config = resolve_config("tiny", epochs=args.epochs)
    base = build_base(training_texts(items), config.tiny, work / "base", seed=config.seed)

    baseline = trl_defaults(items, base, work / "trl-out", args.epochs)
    ours = train("bench", config, store=store).tokens_per_second
    print(f"mix: {len(items)} examples, {args.epochs:g} epoch(s), tiny Llama")
    print(f"TRL SFTTrainer defaults: {baseline:.0f} tok/s")
    print(f"saftool train (tiny preset): {ours:.0f} tok/s")
    print(f"train_throughput: {ours / baseline:.1f}x")


if __name__ == "__main__":
    main()
