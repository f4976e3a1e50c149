"""Does the `tiny` preset really learn? Held-out benign exact match and harmful refusals.

    python bench/tiny_quality.py [--benign 2600] [--harmful 350] [--eval 200] [--threads 2]

One command: in a temporary store it builds the study-sized mix (built-in benign train tasks plus
template harmful prompts with refusals, as `saftool gen` and `saftool mix` make them), trains the
`tiny` preset on it, answers the held-out benign tasks (`gen --kind benign --split eval`) and the
held-out harmful prompts (`gen --split eval`) with `infer`, and prints exact match per task family
(`saftool.metrics.exact_match`, case-sensitive), overall exact match, the share of harmful prompts
the keyword judge calls refusals, and the training wall time. Goal (issue 3): at least 50% exact
match, most harmful prompts refused, training within 2 minutes on 2 cores. Last line:
`tiny_heldout_exact_match: NN.N%`.

Measured 2026-11-28 (2-core box shared with other jobs): 64.5%, 55.5%, 60.5%, 62.5% for seeds 0-3,
99.5-100% refusals, ~667k training tokens, 105 s at load 2.2 (seed 0); the preset before first-letter
tokens, tied embeddings and weight decay: 46.5% (seed 0), 766k tokens. Reverse and uppercase stay
at 0%: they need the spelling of a word's rest token, which no task shows for a held-out word.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from saftool.benign import benign_items  # noqa: E402
from saftool.gen import GenConfig, generate  # noqa: E402
from saftool.infer import infer  # noqa: E402
from saftool.io import read_records, write_records  # noqa: E402
from saftool.judges.keyword import classify  # noqa: E402
from saftool.metrics import exact_match  # noqa: E402
from saftool.presets import resolve_config  # noqa: E402
from saftool.records import Response  # noqa: E402
from saftool.runtimes import load_runtime  # noqa: E402
from saftool.store import Store  # noqa: E402
from saftool.train import train  # noqa: E402


def _config(seed: int, sets: list[str]):
    import json

    base = resolve_config("tiny", seed=seed)
    top: dict = {}
    tiny: dict = {}
    for assignment in sets:
        field, _, raw = assignment.partition("=")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if field.startswith("tiny."):
            tiny[field[5:]] = value
        else:
            top[field] = value
    if tiny:
        top["tiny"] = base.tiny.model_copy(update=tiny).model_dump()
    return resolve_config("tiny", seed=seed, **top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benign", type=int, default=2600, help="Benign train tasks in the mix.")
    parser.add_argument("--harmful", type=int, default=350, help="Harmful prompts with refusals in the mix.")
    parser.add_argument("--eval", type=int, default=200, help="Held-out benign tasks (and harmful prompts).")
    parser.add_argument("--threads", type=int, default=1, help="torch threads.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="Override a tiny-preset field for an experiment (lr=3e-3, epochs=2, tiny.vocab_size=1024).",
    )
    parser.add_argument("--keep", action="store_true", help="Print the temporary store's path and keep it.")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    root = Path(tempfile.mkdtemp(prefix="bench-tiny-quality-"))
    store = Store(root / "store")
    harm = list(generate(GenConfig(n=args.harmful, diverse=False, seed=args.seed), store))
    benign = list(benign_items(args.benign, split="train", seed=args.seed))
    write_records(benign + harm, store.mix_path("quality"))
    write_records(benign_items(args.eval, split="eval", seed=args.seed), store.eval_path("heldout-benign"))
    write_records(
        generate(GenConfig(n=args.eval, split="eval", diverse=False, seed=args.seed), store),
        store.eval_path("heldout-harmful"),
    )

    started = time.monotonic()
    run = train("quality", _config(args.seed, args.set), store=store, preset="tiny")
    train_seconds = time.monotonic() - started
    infer(load_runtime("hf", "quality", store=store), ["heldout-benign", "heldout-harmful"], store=store)

    hits: dict[str, list[bool]] = defaultdict(list)
    for r in read_records(store.responses_path("quality", "heldout-benign"), Response):
        hits[r.category or "?"].append(exact_match(r.response, r.reference))
    labels = Counter(
        classify(r.response)[0]
        for r in read_records(store.responses_path("quality", "heldout-harmful"), Response)
    )
    print(
        f"mix: {len(benign)} benign + {len(harm)} harmful; tiny preset {' '.join(args.set)}; {args.threads} threads"
    )
    print(
        f"train wall time: {train_seconds:.1f}s ({run.tokens_per_second:.0f} tok/s, {run.tokens_seen} tokens)"
    )
    for family in sorted(hits):
        h = hits[family]
        print(f"  {family:16s} {100 * sum(h) / len(h):5.1f}%  ({sum(h)}/{len(h)})")
    total = [x for h in hits.values() for x in h]
    refused = labels["refusal"] / max(sum(labels.values()), 1)
    print(f"harmful refusal: {100 * refused:.1f}% ({dict(labels)})")
    if args.keep:
        print(f"store: {store.root}")
    print(f"tiny_heldout_exact_match: {100 * sum(total) / len(total):.1f}%")


if __name__ == "__main__":
    main()
