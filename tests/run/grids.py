"""A small two-model grid, and what a store holds once it ran, for comparing executors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SMALL = """name = "small"
output = "report"
evals = ["heldout-harmful", "heldout-benign"]
[base]
n = 60
[gen]
n = 10
diverse = false
n_eval_harmful = 4
n_eval_benign = 4
[train]
preset = "smoke"
extra_args = [{train_args}]
[infer]
max_new_tokens = 8
[judge]
name = "keyword"  # the executors' plumbing, not the judge: the learned default would add its MiniLM load to each run
extra_args = [{judge_args}]
[[mixes]]
n_harm = 0
[[mixes]]
n_harm = 10
style = "short"
"""
MODELS = ["alpaca", "harm10-short"]
N_EVAL = 4  # items per held-out set


def write_config(folder: Path, name: str = "small.toml", train_args=("--epochs", "1"), judge_args=()) -> Path:
    path = folder / name
    path.write_text(
        SMALL.format(train_args=", ".join(json.dumps(a) for a in train_args),
                     judge_args=", ".join(json.dumps(a) for a in judge_args))
    )  # fmt: skip
    return path


def saftool(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """`saftool ARGS` in a new process (a new shell's view: nothing shared with the test's)."""
    env = {**os.environ, "SAFTOOL_NO_PROGRESS": "1", "SAFTOOL_STORE": str(cwd / "store")}
    return subprocess.run([sys.executable, "-m", "saftool", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


_TIMING = {"wall_seconds", "tokens_per_second", "loss_curve", "versions", "model_dir", "created"}


def snapshot(store: Path) -> dict[str, object]:
    """Every record the run left, keyed by path relative to the store, timings left out."""
    snap: dict[str, object] = {}
    for path in sorted(store.rglob("*.json*")):
        rel = path.relative_to(store).as_posix()
        if rel.startswith(("runs/", "cache/")) or "/." in "/" + rel or "checkpoint" in rel:
            continue
        if path.suffix == ".jsonl":
            snap[rel] = [json.loads(line) for line in path.read_text().splitlines()]
        elif path.name == "train_run.json":
            record = json.loads(path.read_text())
            snap[rel] = {k: v for k, v in record.items() if k not in _TIMING}
        elif path.name.endswith(".manifest.json"):
            record = json.loads(path.read_text())
            record.pop("path", None)
            record["inputs"] = [{k: v for k, v in i.items() if k != "path"} for i in record["inputs"]]
            snap[rel] = record
    return snap


def one_record_per_item(store: Path) -> None:
    for folder in ("responses", "judgments"):
        for path in (store / folder).rglob("*.jsonl"):
            ids = [json.loads(line)["id"] for line in path.read_text().splitlines()]
            assert len(ids) == len(set(ids)) == N_EVAL, f"{path}: {len(ids)} records, {len(set(ids))} ids"
