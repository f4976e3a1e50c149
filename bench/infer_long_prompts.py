"""The slot decoder on a set with a few very long prompts: sized by length, against every slot sized
by the longest prompt.

    python bench/infer_long_prompts.py [--model DIR] [--prompts 64] [--max-new-tokens 32]
                                       [--dtype auto] [--threads N]

The study's seed-safe set (../shared/data; the bench skips without it) has 728 prompts of median 63
tokens and six of 1,489 to 3,590. The bench takes those six and the first `--prompts` minus six
of the others, answered greedily by SmolLM2-135M-Instruct
(found as bench/infer_generate.py finds it) through the hf runtime's slot decoder, twice in the same
process, alternating:

* `one size`: as before the change, every slot's cache sized for the longest prompt and prefill
  groups of 16 whatever their lengths (`OWN_PASS` and `PREFILL_PADDING` set to infinity);
* `by length`: the defaults: the long prompts in a pass of their own, and prefill groups that pad
  a prompt only to a length near its own.

Both sides answer the same prompt ids; the bench prints how many answers are identical (in bf16 a
prompt prefilled beside different padding can round differently and part; `--dtype float32` for the
text check). The process sets OpenMP's wait policy as the `saftool` command does. The load average
is printed because the box is shared. Last line: `infer_long_prompts: N.Nx`.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infer_generate import SHARED, model_dir  # noqa: E402

from saftool.records import GenerationConfig  # noqa: E402
from saftool.runtimes import Prompt, hf  # noqa: E402

SEED_SAFE = SHARED / "seed-eval/all_datasets_koala_vicuna_wizard_sinstruct_shuffled.csv"
LONG = 6


def load_avg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="Model directory [default: SmolLM2-135M-Instruct].")
    parser.add_argument(
        "--prompts", type=int, default=64, help="Prompts: the 6 longest and the first others [default: 64]."
    )
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument(
        "--dtype", default="auto", help="auto (bf16 on a CPU with bf16 hardware), float32 or bfloat16."
    )
    parser.add_argument("--rounds", type=int, default=1, help="Runs of each side, alternating [default: 1].")
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="torch threads [default: every core]."
    )
    args = parser.parse_args()
    if not SEED_SAFE.is_file():
        print(f"skipped: {SEED_SAFE} is absent")
        return
    from saftool.devices import yielding_cpu_threads

    yielding_cpu_threads()  # as the saftool command runs infer
    import torch

    from saftool import data

    path = model_dir(args.model)
    if path is None:
        return  # model_dir said why
    torch.set_num_threads(args.threads)
    dataset = data.get("seed-safe")
    items = list(data.normalise(SEED_SAFE, dataset, data.detect_format(SEED_SAFE, dataset.format)))
    runtime = hf.HFRuntime(str(path), hf.HFRuntime.Options(device="cpu", dtype=args.dtype))
    gen = GenerationConfig(max_new_tokens=args.max_new_tokens)
    lengths = [
        len(e.ids)
        for e in hf.encode_prompts(runtime.tokenizer, [Prompt(i.instruction, i.input) for i in items], gen)
    ]
    longest = sorted(range(len(items)), key=lambda k: -lengths[k])[:LONG]
    chosen = longest + [k for k in range(len(items)) if k not in longest][: args.prompts - LONG]
    prompts = [Prompt(items[k].instruction, items[k].input) for k in chosen]
    picked = sorted((lengths[k] for k in chosen), reverse=True)
    print(
        f"model: {path}; {len(prompts)} seed-safe prompts (the {LONG} longest: {picked[:LONG]} tokens; the others' "
        f"median {picked[len(picked) // 2]}); max_new_tokens {args.max_new_tokens}; dtype {runtime.dtype}; "
        f"threads {args.threads}"
    )
    list(runtime.generate(prompts[:1], gen))  # loads the weights: neither side pays for it

    defaults = (hf.OWN_PASS, hf.PREFILL_PADDING, hf.PREFILL_FREE)
    sides = {"one size": (math.inf, math.inf, math.inf), "by length": defaults}
    seconds = {side: 0.0 for side in sides}
    texts = {}
    for _ in range(args.rounds):
        for side, (own_pass, padding, free) in sides.items():
            hf.OWN_PASS, hf.PREFILL_PADDING, hf.PREFILL_FREE = own_pass, padding, free
            before = load_avg()
            started = time.perf_counter()
            out = dict(runtime.generate(prompts, gen))
            took = time.perf_counter() - started
            seconds[side] += took
            texts[side] = [out[k].text for k in range(len(prompts))]
            tokens = sum(c.completion_tokens for c in out.values())
            print(
                f"{side}: {tokens} tokens in {took:.1f}s = {tokens / took:.1f} tok/s (load average {before} before, {load_avg()} after)"
            )
    hf.OWN_PASS, hf.PREFILL_PADDING, hf.PREFILL_FREE = defaults
    same = sum(a == b for a, b in zip(texts["one size"], texts["by length"]))
    print(f"identical answers: {same} of {len(prompts)}")
    print(f"infer_long_prompts: {seconds['one size'] / seconds['by length']:.1f}x")


if __name__ == "__main__":
    main()
