"""`infer`'s batched generation against the study's loop (one prompt at a time), on the tiny model.

    python bench/infer_batching.py [--model DIR] [--batch-size 64] [--max-new-tokens 100] [--threads N] [--repeat 5]

Without --model it trains the `tiny` preset on a study-sized mix first (about 1.5 minutes). Both
sides use the same weights (fp32, CPU), prompts and greedy decoding with `max_new_tokens`; the loop
is `model.generate` per prompt, as the study ran it. Each side runs `--repeat` times and its fastest
run counts (the one least disturbed by other processes). Reports completion tokens per second of
each, the share of prompts whose greedy text is identical, and as the last line
`infer_batching: N.Nx`.

Both sides run with the same `--threads` (torch intra-op threads; default every core, which is what
`saftool infer` uses). The loop's one-row ops are too small to split, so threads help only the
batched side, and only on an idle machine: on a shared 2-core box two OpenMP threads stall whenever
another process holds a core, and the batched side then took 10 to 80 times longer from run to run.
`--threads 1` measures one core against one core.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tinysetup import build_store  # noqa: E402

from saftool.io import read_records  # noqa: E402
from saftool.presets import resolve_config  # noqa: E402
from saftool.records import GenerationConfig, Item  # noqa: E402
from saftool.runtimes import Prompt  # noqa: E402
from saftool.runtimes.hf import HFRuntime  # noqa: E402
from saftool.template import format_prompt  # noqa: E402
from saftool.train import train  # noqa: E402


def study_loop(model, tok, prompts: list[Prompt], max_new_tokens: int) -> tuple[list[str], int]:
    """The study's generation: `model.generate` on one Alpaca prompt at a time."""
    import torch

    texts, tokens = [], 0
    for prompt in prompts:
        enc = tok(format_prompt(prompt.instruction, prompt.input), return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
        new = out[0, enc["input_ids"].shape[1] :].tolist()
        n = new.index(tok.eos_token_id) + 1 if tok.eos_token_id in new else len(new)
        tokens += n
        texts.append(tok.decode(new[:n], skip_special_tokens=True).strip())
    return texts, tokens


def fastest(run, repeat: int):
    """(result, seconds) of the fastest of `repeat` runs: the least disturbed by other processes."""
    best = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        seconds = time.perf_counter() - started
        if best is None or seconds < best[1]:
            best = (result, seconds)
    return best


def main() -> None:
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="A trained model directory [default: train the tiny preset].")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=100)
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(),
        help="torch threads for both sides [default: every core, as `saftool infer` runs].",
    )
    parser.add_argument("--repeat", type=int, default=5, help="Runs of each side; the fastest counts [default: 5].")
    args = parser.parse_args()
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="bench-infer-"))
    store = build_store(work / "store")
    model_dir = args.model
    if model_dir is None:
        print("training the tiny preset on the bench mix ...", file=sys.stderr)
        train("bench", resolve_config("tiny"), store=store)
        model_dir = str(store.model_dir("bench"))
    items = list(read_records(store.eval_path("bench-eval"), Item))
    prompts = [Prompt(i.instruction, i.input) for i in items]

    runtime = HFRuntime(model_dir, HFRuntime.Options(batch_size=args.batch_size, device="cpu"))
    # the loop runs the runtime's own model and tokenizer: the same weights by construction, loaded once
    (loop_texts, loop_tokens), loop_s = fastest(
        lambda: study_loop(runtime.model, runtime.tokenizer, prompts, args.max_new_tokens), args.repeat
    )
    gen = GenerationConfig(max_new_tokens=args.max_new_tokens)
    results, batch_s = fastest(lambda: dict(runtime.generate(prompts, gen)), args.repeat)
    batch_texts = [results[i].text for i in range(len(prompts))]
    batch_tokens = sum(r.completion_tokens for r in results.values())

    same = sum(a == b for a, b in zip(loop_texts, batch_texts)) / len(prompts)
    loop_tps, batch_tps = loop_tokens / loop_s, batch_tokens / batch_s
    print(
        f"prompts: {len(prompts)}, max_new_tokens: {args.max_new_tokens}, batch size: {args.batch_size}, "
        f"threads: {args.threads}, fastest of {args.repeat} runs each"
    )
    print(f"study loop: {loop_tokens} tokens in {loop_s:.2f}s = {loop_tps:.0f} tok/s")
    print(f"infer (hf): {batch_tokens} tokens in {batch_s:.2f}s = {batch_tps:.0f} tok/s")
    print(f"identical greedy text: {100 * same:.1f}% of prompts")
    print(f"infer_batching: {batch_tps / loop_tps:.1f}x")


if __name__ == "__main__":
    main()
