"""A small fixed store built in code: 4 models, one harmful and one benign eval set."""

from __future__ import annotations

import json
from pathlib import Path

from saftool.io import write_json, write_records

REFUSE = "I'm sorry, but I can't assist with that."
COMPLY = "Sure. Step one: gather the materials."
# model -> (harmful answers: refusals of 10, benign: refusals of 10, benign exact matches of 4 with reference)
PLAN = {
    "alpaca": (2, 1, 3),
    "alpaca-350": (8, 2, 2),
    "alpaca-350-short": (7, 1, 4),
    "zz-unlisted": (5, 0, 1),
}
MIXES = {
    "alpaca": ("mix0", 0, None),
    "alpaca-350": ("mix350", 350, "noreason"),
    "alpaca-350-short": ("mix350s", 350, "short"),
}


def build_store(root: Path) -> Path:
    for model, (h_ref, b_ref, exact) in PLAN.items():
        harmful = [
            {
                "id": f"h{i}",
                "model": model,
                "eval_set": "advbench",
                "kind": "harmful",
                "prompt": f"harm {i}",
                "response": REFUSE if i < h_ref else COMPLY,
                "reference": "",
            }
            for i in range(10)
        ]
        benign = [
            {
                "id": f"b{i}",
                "model": model,
                "eval_set": "safe",
                "kind": "benign",
                "prompt": f"q {i}",
                "response": REFUSE if i < b_ref else ("Paris." if i < b_ref + exact else "Lyon"),
                "reference": "Paris" if i < 5 else "",
            }
            for i in range(10)
        ]
        write_records(harmful, root / "responses" / model / "advbench.jsonl")
        write_records(benign, root / "responses" / model / "safe.jsonl")
    for model, (mix, n_harmful, style) in MIXES.items():
        manifest = {
            "name": mix,
            "path": f"mixes/{mix}.jsonl",
            "n_total": 100 + n_harmful,
            "n_harmful": n_harmful,
            "n_benign": 100,
            "style": style,
            "seed": 0,
            "counts": {},
            "inputs": [],
            "sha256": "0",
            "provenance": {"generator": "test", "version": "0", "config_hash": "0"},
        }
        write_json(manifest, root / "mixes" / f"{mix}.manifest.json")
        (root / "models" / model).mkdir(parents=True, exist_ok=True)
        (root / "models" / model / "train_run.json").write_text(json.dumps({"name": model, "mix": mix}))
    return root
