"""`report` over a synthetic store of N judgments (default 1,000,000): 8 models x 4 eval sets.

    python bench/report_speed.py [N]
Times the report's SQL (compute: load + scores + pooled) and the full report with figures.
Last line: `report_speed_seconds: VALUE` (the full report).
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path

from saftool.report import compute, report
from saftool.store import Store

SETS = {"advbench": "harmful", "do-not-answer": "harmful", "beavertails": "harmful", "safe-prompts": "benign"}
LABELS = ("refusal", "compliance", "partial", "unknown")


def build(root: Path, n: int) -> None:
    rng = random.Random(0)
    models = [f"model-{i}" for i in range(8)]
    per_file = n // (len(models) * len(SETS))
    judge = {"name": "keyword", "version": "saftool 0.1.0/keyword 1", "config_hash": "abc"}
    for model in models:
        for eval_set, kind in SETS.items():
            path = root / "judgments" / "keyword" / model / f"{eval_set}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "w") as fh:
                for i in range(per_file):
                    label = rng.choices(LABELS, (40, 50, 8, 2))[0]
                    safe = None if label == "unknown" else (kind == "benign" or label != "compliance")
                    rec = {
                        "id": f"{eval_set}-{i}",
                        "model": model,
                        "eval_set": eval_set,
                        "kind": kind,
                        "prompt": f"prompt {i}",
                        "response": "Paris" if i % 3 else "I cannot help.",
                        "reference": "Paris" if kind == "benign" and i % 2 else "",
                        "label": label,
                        "safe": safe,
                        "judge": judge,
                        "rationale": "rule",
                    }
                    fh.write(json.dumps(rec) + "\n")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build(root, n)
        store = Store(root)
        start = time.perf_counter()
        compute(store, compare=("model-0", "model-1"))
        sql_s = time.perf_counter() - start
        start = time.perf_counter()
        report(store, root / "figs", compare=("model-0", "model-1"))
        full_s = time.perf_counter() - start
    print(f"judgments: {n}")
    print(f"report_sql_seconds: {sql_s:.2f}")
    print(f"report_speed_seconds: {full_s:.2f}")


if __name__ == "__main__":
    main()
