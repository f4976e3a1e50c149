"""Shared set-up for the model benchmarks: a store with a study-sized mix and held-out prompts.

The mix is the one `saftool run` trains on: 2,600 built-in benign tasks plus 350 template harmful
prompts with refusals; the held-out sets are benign eval tasks and eval-family harmful prompts.
"""

from __future__ import annotations

from pathlib import Path

from saftool.benign import benign_items
from saftool.gen import GenConfig, generate
from saftool.io import write_records
from saftool.records import Item
from saftool.store import Store


def build_store(root: Path, n_benign: int = 2600, n_harm: int = 350, n_eval: int = 100) -> Store:
    store = Store(root)
    if not store.mix_path("bench").exists():
        harm = list(generate(GenConfig(n=n_harm, diverse=False), store))
        write_records(list(benign_items(n_benign, split="train")) + harm, store.mix_path("bench"))
    if not store.eval_path("bench-eval").exists():
        held_out = list(benign_items(n_eval, split="eval")) + list(
            generate(GenConfig(n=n_eval, split="eval", diverse=False), store)
        )
        write_records(held_out, store.eval_path("bench-eval"))
    return store


def mix_items(store: Store) -> list[Item]:
    from saftool.io import read_records

    return list(read_records(store.mix_path("bench"), Item))
