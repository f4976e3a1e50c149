"""Requests a chat model writes itself, Magpie-style (Xu et al., 2024): the README's probes p11-p13.

Given only its chat template up to the user turn (system message, then `<|im_start|>user\\n` for
SmolLM2), an instruction-tuned model continues with a user's request. This samples them in batches,
keeps those the model closed with its end-of-turn token, 15-600 characters long, without repeats
(case and spacing ignored), and writes the first N as `Item` records (kind benign, split train,
no answer) that `saftool infer --model BASE -i FILE -o ANSWERS --template chat` answers into a base
set for `saftool mix --base`.

A probe, not a stage: the default grid's base set is still the built-in instructions (see the
README's probes for why). The same seed, batch and thread count give the same requests.

    python scripts/magpie_requests.py --model smollm2-135m --n 400 -o store/prompts/magpie-400.jsonl

The model loads as `saftool infer --backend hf` loads it (a store name, a directory or a Hub id;
safetensors only; bf16 on a CPU that has it) and stops at the ids infer stops at.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time

from saftool import __version__
from saftool.hashing import config_hash
from saftool.io import write_records
from saftool.records import Item, Provenance

MIN_CHARS, MAX_CHARS = 15, 600
USER_MARKER = "\x00request\x00"  # stands in for the user's message, to cut the template in front of it


def pre_query_ids(tokenizer):
    """Token ids of the chat template up to where the user's message would start."""
    text = tokenizer.apply_chat_template([{"role": "user", "content": USER_MARKER}], tokenize=False)
    prefix = text[: text.index(USER_MARKER)]
    return tokenizer(prefix, return_tensors="pt", add_special_tokens=False).input_ids


def sample_requests(model: str, store: str | None, n: int, seed: int, batch: int, max_new_tokens: int) -> list[str]:
    import torch

    from saftool.runtimes import load_runtime
    from saftool.store import Store

    runtime = load_runtime("hf", model, store=Store(store))
    tokenizer, stops = runtime.tokenizer, runtime.stops
    ids = pre_query_ids(tokenizer).to(runtime.device)
    torch.manual_seed(seed)
    seen: set[str] = set()
    kept: list[str] = []
    drawn, started = 0, time.perf_counter()
    while len(kept) < n and drawn < 4 * n:
        with torch.no_grad():
            rows = runtime.model.generate(
                ids.repeat(batch, 1),
                attention_mask=torch.ones(batch, ids.shape[1], dtype=torch.long, device=runtime.device),
                do_sample=True,
                temperature=1.0,
                top_p=1.0,
                max_new_tokens=max_new_tokens,
                eos_token_id=stops,
                pad_token_id=stops[0],
            )
        drawn += batch
        for row in rows[:, ids.shape[1] :].tolist():
            end = next((i for i, token in enumerate(row) if token in stops), None)
            if end is None:
                continue  # the length limit cut the request off
            request = tokenizer.decode(row[:end]).strip()
            key = " ".join(request.lower().split())
            if MIN_CHARS <= len(request) <= MAX_CHARS and key not in seen and "<|" not in request:
                seen.add(key)
                kept.append(request)
        print(f"drawn {drawn}, kept {len(kept)}, {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if len(kept) < n:
        sys.exit(f"magpie_requests: only {len(kept)} usable requests in {drawn} draws; ask for fewer (--n)")
    return kept[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a chat model: store name, directory or Hub id")
    parser.add_argument("--store", help="the store that names resolve in [default: as saftool's --store]")
    parser.add_argument("--n", type=int, default=400, help="requests to write (default 400)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--batch", type=int, default=32, help="requests sampled at once; another batch gives others")
    parser.add_argument("--max-new-tokens", type=int, default=80, help="longest request; a longer one is dropped")
    parser.add_argument("-o", "--output", required=True, help="the JSONL file of Item records (written atomically)")
    args = parser.parse_args()
    requests = sample_requests(args.model, args.store, args.n, args.seed, args.batch, args.max_new_tokens)
    settings = {k: v for k, v in vars(args).items() if k not in ("output", "store")}
    provenance = Provenance(
        generator=f"magpie:{args.model}",
        version=__version__,
        seed=args.seed,
        config_hash=config_hash(settings),
    )
    items = [
        Item(
            id="magpie-" + hashlib.sha256(request.encode()).hexdigest()[:12],
            instruction=request,
            kind="benign",
            category="magpie",
            source="self:magpie",
            split="train",
            provenance=provenance,
        )
        for request in requests
    ]
    write_records(items, args.output)
    print(f"wrote {len(items)} requests -> {args.output}", file=sys.stderr)


if __name__ == "__main__":
    from saftool.errors import SaftoolError

    try:
        main()
    except SaftoolError as exc:  # a model that does not resolve or load: one line, as saftool gives it
        print(f"magpie_requests: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
