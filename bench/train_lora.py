"""`train`'s LoRA tokens per second against TRL SFTTrainer's defaults, on a real model.

    python bench/train_lora.py [--model DIR] [--mix FILE] [--examples 48] [--threads N]
                               [--preset smollm2-135m-lora]

The model is SmolLM2-135M-Instruct, found as bench/infer_generate.py finds it (exits 0 saying so
without one). Every side trains the preset's LoRA adapter (for the default preset, all linear
layers of the top 10 decoder layers, r 8) for one epoch on the same `--examples` examples: a random
sample of `--mix` (a store mix, e.g. the default grid's), else of the study-sized mix of
bench/tinysetup.py; answer-only loss, the preset's template. Each side runs in a fresh process, as
`saftool train` does, so that what a process sets before torch loads (OpenMP's wait policy) is its
own:

* `trl`: TRL's `SFTConfig` defaults for everything that decides speed (batch 8, gradient
  checkpointing, bf16 autocast where the CPU has it, padding to the longest example, max_length
  1024, TRL's loss), in a process with the default environment, as a user runs TRL. Two settings
  differ from TRL's defaults, both in its favour or neutral: batches are length-grouped, as the
  preset's are (less padding; the sides then see the same batches, so their losses compare), and
  the training hyperparameters (learning rate, schedule, warm-up, accumulation, seed) are the
  preset's, so the loss trajectories can be compared.
* `trl-yielding`: the same in a process with saftool's OpenMP setting
  (`devices.yielding_cpu_threads`): what saftool's trainer gains apart from that setting.
* `saftool`: `train`'s own trainer (`make_trainer`) with the preset, in a process set up as the
  `saftool` command sets itself up.

Tokens are the tokens of the examples each side trained on (the same examples, tokenized the same
way) over the time from building the trainer (loading the model, tokenizing) to the end of
`trainer.train()`: saftool's trainer computes the frozen layers' output when it is built (the
preset trains LoRA on the top 10 layers only; TRL's side trains the same adapter, so its backward
also stops at the lowest adapted layer). The loss of every optimizer step is logged on each side;
the bench checks that saftool's trajectory stays within `--loss-tolerance` (relative, per step, and
for the mean) of TRL's and exits 1 where it does not. The load average is printed because the box
is shared; the sides run in order trl, saftool, trl-yielding. Last lines: `train_lora_vs_yielding:
N.Nx` and `train_lora: N.Nx` (saftool against TRL as users run it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

SIDES = ("trl", "saftool", "trl-yielding")


def load_avg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def train_side(side: str, items_file: Path, base: Path, preset: str, threads: int, out: Path) -> dict:
    """Train one side in this (fresh) process; its tokens, seconds and per-step losses."""
    if side != "trl":
        from saftool.devices import yielding_cpu_threads

        yielding_cpu_threads()
    import torch

    from saftool.io import read_records
    from saftool.presets import resolve_config
    from saftool.records import Item

    torch.set_num_threads(threads)
    items = list(read_records(items_file, Item))
    config = resolve_config(preset, base_model=str(base), epochs=1, logging_steps=1)
    import peft  # noqa: F401  (both sides import the same libraries; not part of the timing)
    import trl  # noqa: F401

    before = load_avg()
    started = time.perf_counter()  # from the trainer's construction: saftool's starts training's work there
    trainer = (
        saftool_trainer(items, base, out, config)
        if side == "saftool"
        else trl_trainer(items, base, out, config)
    )
    args = trainer.args
    setting = (
        f"batch {args.per_device_train_batch_size} x {args.gradient_accumulation_steps}, bf16 {args.bf16}, "
        f"gradient checkpointing {args.gradient_checkpointing}, max_length {args.max_length}, "
        f"sampler {args.train_sampling_strategy}, {type(trainer).__name__}, OMP_WAIT_POLICY "
        f"{os.environ.get('OMP_WAIT_POLICY', '(unset)')}, threads {torch.get_num_threads()}"
    )
    tokens = sum(len(ids) for ids in trainer.train_dataset["input_ids"])
    trainer.train()
    seconds = time.perf_counter() - started
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {
        "setting": setting,
        "tokens": tokens,
        "seconds": seconds,
        "losses": losses,
        "load": [before, load_avg()],
    }


def trl_trainer(items, base: Path, out: Path, config):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from saftool.train import lora_config, prompt_completion_dataset

    args = SFTConfig(
        output_dir=str(out),
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.accumulation_steps(1),
        learning_rate=config.lr,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_steps,
        weight_decay=config.weight_decay,
        seed=config.seed,
        data_seed=config.seed,
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
    )
    model = AutoModelForCausalLM.from_pretrained(base)
    return SFTTrainer(
        model=model,
        args=args,
        train_dataset=prompt_completion_dataset(items, config.template, config.system),
        processing_class=AutoTokenizer.from_pretrained(base),
        peft_config=lora_config(config, model),
    )


def saftool_trainer(items, base: Path, out: Path, config):
    from saftool.train import make_trainer

    return make_trainer(config, items, str(base), out, False, 1, config.accumulation_steps(1))


def run_side(side: str, items_file: Path, base: Path, args, work: Path) -> dict:
    """One side in a fresh interpreter (`--side`), its result read back from a JSON file."""
    result = work / f"{side}.json"
    argv = [sys.executable, __file__, "--side", side, "--items", str(items_file), "--model", str(base),
            "--preset", args.preset, "--threads", str(args.threads), "--result", str(result)]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}  # each side sets its own
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
    return json.loads(result.read_text())


def compare_losses(ours: list[float], theirs: list[float], tolerance: float) -> tuple[bool, str]:
    """Whether two per-step loss trajectories agree: each step, and their means, within `tolerance` (relative)."""
    if len(ours) != len(theirs) or not ours:
        return False, f"{len(ours)} vs {len(theirs)} logged steps"
    steps = [abs(a - b) / max(abs(b), 1e-9) for a, b in zip(ours, theirs)]
    mean_a, mean_b = sum(ours) / len(ours), sum(theirs) / len(theirs)
    mean_gap = abs(mean_a - mean_b) / max(abs(mean_b), 1e-9)
    ok = max(steps) <= tolerance and mean_gap <= tolerance
    return ok, (
        f"mean {mean_a:.4f} vs {mean_b:.4f} ({mean_gap:.1%} apart), largest step gap {max(steps):.1%} "
        f"(step {steps.index(max(steps)) + 1} of {len(steps)}), tolerance {tolerance:.0%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="Model directory [default: SmolLM2-135M-Instruct].")
    parser.add_argument(
        "--mix", help="A mix JSONL to sample from [default: the bench mix of bench/tinysetup.py]."
    )
    parser.add_argument(
        "--examples", type=int, default=48, help="Examples each side trains on [default: 48]."
    )
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="torch threads [default: every core]."
    )
    parser.add_argument(
        "--preset", default="smollm2-135m-lora", help="Training preset [default: smollm2-135m-lora]."
    )
    parser.add_argument(
        "--loss-tolerance",
        type=float,
        default=0.05,
        help="Largest relative loss gap per step [default: 0.05].",
    )
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)  # internal: one side, in a child
    parser.add_argument("--items", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        result = train_side(args.side, Path(args.items), Path(args.model), args.preset, args.threads,
                            Path(tempfile.mkdtemp(prefix=f"bench-lora-{args.side}-")))  # fmt: skip
        Path(args.result).write_text(json.dumps(result))
        return

    from infer_generate import model_dir
    from tinysetup import build_store, mix_items

    from saftool.io import read_records, write_records
    from saftool.records import Item

    base = model_dir(args.model)
    if base is None:
        return  # model_dir said why
    work = Path(tempfile.mkdtemp(prefix="bench-lora-"))
    items = list(read_records(Path(args.mix), Item)) if args.mix else mix_items(build_store(work / "store"))
    items = random.Random(0).sample(items, min(args.examples, len(items)))
    items_file = work / "items.jsonl"
    write_records(items, items_file)
    source = args.mix or "the bench mix"
    print(
        f"model: {base}; {len(items)} examples of {source}, preset {args.preset}, 1 epoch; threads {args.threads}"
    )
    results = {}
    for side in SIDES:
        results[side] = r = run_side(side, items_file, base, args, work)
        print(f"{side}: {r['setting']}")
        print(
            f"  {r['tokens']} tokens in {r['seconds']:.1f}s = {r['tokens'] / r['seconds']:.0f} tok/s "
            f"(load average {r['load'][0]} before, {r['load'][1]} after)"
        )
    ok, told = compare_losses(results["saftool"]["losses"], results["trl"]["losses"], args.loss_tolerance)
    print(f"losses per step, saftool vs trl: {told}: {'agree' if ok else 'DIFFER'}")
    print(f"  trl:     {' '.join(f'{x:.3f}' for x in results['trl']['losses'])}")
    print(f"  saftool: {' '.join(f'{x:.3f}' for x in results['saftool']['losses'])}")

    def tps(side: str) -> float:
        return results[side]["tokens"] / results[side]["seconds"]

    print(f"train_lora_vs_yielding: {tps('saftool') / tps('trl-yielding'):.1f}x")
    print(f"train_lora: {tps('saftool') / tps('trl'):.1f}x")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
