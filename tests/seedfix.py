"""A store of seed groups built in code: the mixes alpaca and harm700, each trained with seeds 0, 1
and 2 (models MIX-sSEED, as `run` names them), answering 10 held-out harmful and 10 benign prompts."""

from __future__ import annotations

from pathlib import Path

from saftool.io import write_json, write_records
from saftool.judge import judge_store, load_judge
from saftool.store import Store
from tests.storefix import COMPLY, REFUSE

# model -> (mix, seed, refusals of 10 harmful prompts, refusals of 10 benign ones)
MODELS = {
    "alpaca-s0": ("alpaca", 0, 1, 0),
    "alpaca-s1": ("alpaca", 1, 2, 1),
    "alpaca-s2": ("alpaca", 2, 0, 0),
    "harm700-s0": ("harm700", 0, 9, 2),
    "harm700-s1": ("harm700", 1, 7, 3),
    "harm700-s2": ("harm700", 2, 8, 1),
}


def train_run(name: str, mix: str, seed: int, lr: float = 0.003) -> dict:
    return {
        "name": name,
        "mix": mix,
        "mix_sha256": f"sha-{mix}",
        "base_model": "saftool:tiny",
        "method": "full",
        "preset": "tiny",
        "config": {"seed": seed, "lr": lr, "epochs": 8.0, "device": "auto"},
        "config_hash": f"hash-{name}",
        "model_dir": f"/store/models/{name}",
        "loss_curve": [],
        "tokens_seen": 1,
        "tokens_per_second": 1.0,
        "wall_seconds": 1.0,
        "versions": {},
    }


def manifest(name: str, n_harmful: int, seed: int) -> dict:
    return {
        "name": name,
        "path": f"mixes/{name}.jsonl",
        "n_total": 100 + n_harmful,
        "n_harmful": n_harmful,
        "n_benign": 100,
        "style": "noreason" if n_harmful else None,
        "seed": seed,
        "counts": {},
        "inputs": [{"path": "builtin:benign", "sha256": f"base-{seed}", "records": 100}]
        + ([{"path": "harm.jsonl", "sha256": "harm", "records": 700}] if n_harmful else []),
        "sha256": f"mix-{name}-{seed}",
        "provenance": {"generator": "mix", "version": "0", "seed": seed, "config_hash": "0"},
    }


def answers(root, model: str, eval_set: str, kind: str, refusals: int, n: int = 10) -> None:
    rows = [
        {
            "id": f"{eval_set}-{i}",
            "model": model,
            "eval_set": eval_set,
            "kind": kind,
            "prompt": f"{kind} prompt {i}",
            "response": REFUSE if i < refusals else COMPLY,
        }
        for i in range(n)
    ]
    write_records(rows, root / "responses" / model / f"{eval_set}.jsonl")


def build_seed_store(root: Path) -> Store:
    for model, (mix, seed, harm_ref, benign_ref) in MODELS.items():
        # as `run` does it: one mix per recipe, made with the data seed 0, trained once per seed
        write_json(manifest(mix, 700 if mix == "harm700" else 0, 0), root / "mixes" / f"{mix}.manifest.json")
        write_json(train_run(model, mix, seed), root / "models" / model / "train_run.json")
        answers(root, model, "heldout-harmful", "harmful", harm_ref)
        answers(root, model, "heldout-benign", "benign", benign_ref)
    store = Store(root)
    judge_store(store, load_judge("keyword"))
    return store
