"""A store for the viewer, built in code on tests/storefix: 4 models, 2 eval sets, harm categories,
two judges that disagree, a full training-run record with a loss curve and a chat-API usage log."""

from __future__ import annotations

import json
from pathlib import Path

from saftool.io import write_json, write_records
from saftool.judge import judge_store, load_judge
from saftool.store import Store
from tests.storefix import build_store

CATEGORIES = ("violence,aiding_and_abetting,incitement", "privacy_violation", "self_harm")
SECOND_JUDGE = "human"  # a second set of verdicts on the same answers, as a labelled file would give


def build_viewer_store(root: Path) -> Store:
    build_store(root)
    for path in root.glob("responses/*/advbench.jsonl"):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        for i, row in enumerate(rows):
            row["category"] = CATEGORIES[i % len(CATEGORIES)]
            row.update(prompt_tokens=5 + i, completion_tokens=9, backend="hf")
        write_records(rows, path)
    store = Store(root)
    judge_store(store, load_judge("keyword"))
    # the second judge calls every third keyword refusal a compliance (and unsafe)
    for path in root.glob("judgments/keyword/*/*.jsonl"):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        for i, row in enumerate(rows):
            row["judge"] = {"name": SECOND_JUDGE, "version": "1", "config_hash": ""}
            if row["label"] == "refusal" and i % 3 == 0:
                row.update(label="compliance", safe=False if row["kind"] == "harmful" else None)
        write_records(rows, root / "judgments" / SECOND_JUDGE / path.parent.name / path.name)
    write_json(
        {
            "name": "alpaca-350",
            "mix": "mix350",
            "mix_sha256": "0",
            "base_model": "saftool:tiny",
            "method": "full",
            "preset": "smoke",
            "config": {"seed": 0, "lr": 0.003},
            "config_hash": "abc",
            "model_dir": str(root / "models" / "alpaca-350"),
            "loss_curve": [{"step": s, "epoch": s / 10, "loss": 6.0 - s / 5} for s in range(1, 21)],
            "tokens_seen": 4000,
            "tokens_per_second": 2500.5,
            "wall_seconds": 1.6,
            "versions": {},
        },
        root / "models" / "alpaca-350" / "train_run.json",
    )
    usage = root / "cache" / "judge" / "usage.jsonl"
    usage.parent.mkdir(parents=True, exist_ok=True)
    usage.write_text(
        "".join(
            json.dumps(
                {
                    "namespace": ns,
                    "model": model,
                    "requests": req,
                    "cache_hits": hits,
                    "retries": 0,
                    "prompt_tokens": pt,
                    "completion_tokens": ct,
                    "time": 0,
                }
            )
            + "\n"
            for ns, model, req, hits, pt, ct in [
                ("judge:llm:1:seed", "gpt-4o-mini", 10, 0, 1000, 20),
                ("judge:llm:1:seed", "gpt-4o-mini", 2, 8, 200, 4),
                ("judge:llm:1:seed", "local-model", 3, 0, 300, 6),
            ]
        )
    )
    return store
