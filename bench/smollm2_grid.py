"""The default grid (`saftool run`, SmolLM2-135M) on the quick start's offline sets and the study's public sets.

    python bench/smollm2_grid.py [--store DIR] [--per-kind N] [--out DIR] [--shared ../shared]

Imports AdvBench, Do-Not-Answer, BeaverTails, seed-safe and XSTest from `../shared/data` into the
store (`saftool data pull NAME --from FILE`), then runs `saftool run` there and times it, and prints
each model's scores with their 95% intervals from the report's scores.csv: safety on the harmful
sets, conservativeness on the safe ones. Skips with a reason (exit 0) where ../shared is absent: a
fresh clone has only the offline sets, which the quick start's `saftool run` scores alone. A rerun in
the same store skips every finished stage.

The five sets hold ~3,300 prompts, and seven 135M models answering all of them take hours on a CPU.
`--per-kind N` (default 60) evaluates a seeded random sample of N harmful and N safe prompts of each
set instead (file order kept; a set with fewer has all of them), stored as `NAME-N`, and runs the
default grid with only its `evals` replaced, so every other stage is the default's own (a later
`saftool run` in the same store reuses the trained models). A random sample, not the first N:
Do-Not-Answer is ordered by risk area. `--per-kind 0` takes the whole sets (`@store`).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from saftool.io import read_records, write_records
from saftool.records import Item
from saftool.run.plan import HELDOUT_BENIGN, HELDOUT_HARMFUL, HELDOUT_LOOKS_UNSAFE
from saftool.store import Store

ROOT = Path(__file__).resolve().parents[1]
# registry name -> file under shared/data (the study's copies, and XSTest's)
PUBLIC = {
    "advbench": "seed-eval/llm_attacks.csv",
    "do-not-answer": "seed-eval/do_not_answer_en.csv",
    "beavertails-eval": "seed-eval/beaver_prompt.csv",
    "seed-safe": "seed-eval/all_datasets_koala_vicuna_wizard_sinstruct_shuffled.csv",
    "xstest": "xstest/xstest_prompts.csv",
}
# (eval set, metric) in the README's column order
COLUMNS = [
    ("heldout-harmful", "safety"), ("advbench", "safety"), ("do-not-answer", "safety"),
    ("beavertails-eval", "safety"), ("xstest", "safety"), ("heldout-benign", "conservativeness"),
    ("heldout-looks-unsafe", "conservativeness"), ("seed-safe", "conservativeness"), ("xstest", "conservativeness"),
]


def saftool(store: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SAFTOOL_NO_PROGRESS": "1"}
    return subprocess.run([sys.executable, "-m", "saftool", "--store", str(store), *args], env=env, text=True,
                          stdout=subprocess.PIPE, check=True)  # fmt: skip


def sample_per_kind(store: Path, name: str, per_kind: int, seed: int = 0) -> str:
    """Write `per_kind` harmful and `per_kind` safe items of eval set `name`, drawn at random (file order
    kept), as eval set `name-per_kind`; return its name."""
    evals = Store(store)
    items = list(read_records(evals.eval_path(name), Item))
    rng = random.Random(f"{seed}:{name}")
    chosen: set[str] = set()
    for kind in ("harmful", "benign"):
        ids = [item.id for item in items if item.kind == kind]
        chosen.update(rng.sample(ids, min(per_kind, len(ids))))
    sample = f"{name}-{per_kind}"
    write_records((item for item in items if item.id in chosen), evals.eval_path(sample))
    return sample


def cell(row: dict[str, str]) -> str:
    """A score with its Wilson interval and n, and below it the judge-corrected score with its interval
    where the report had a judge profile (the default judge ships one)."""
    text = f"{float(row['score']):.1f} [{float(row['low']):.1f}, {float(row['high']):.1f}] (n={row['n']})"
    if row.get("corrected"):
        text += (f"<br>corr. {float(row['corrected']):.1f} [{float(row['corrected_low']):.1f}, "
                 f"{float(row['corrected_high']):.1f}]")  # fmt: skip
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=ROOT / "store")
    parser.add_argument("--per-kind", type=int, default=60, help="harmful and safe prompts per public set; 0: all")
    parser.add_argument("--out", default="figs")
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("SAFTOOL_SHARED", ROOT.parent / "shared")))
    args = parser.parse_args()
    data = args.shared / "data"
    if not data.is_dir():
        print(f"smollm2_grid: skipped: {data} is absent (the public sets are read from there)")
        return
    for name, path in PUBLIC.items():
        saftool(args.store, "data", "pull", name, "--from", str(data / path))
    config: list[str] = []
    names = {name: name for name in PUBLIC}
    if args.per_kind:
        names = {name: sample_per_kind(args.store, name, args.per_kind) for name in PUBLIC}
        evals = [HELDOUT_HARMFUL, HELDOUT_BENIGN, HELDOUT_LOOKS_UNSAFE, *names.values()]
        path = Path(args.out) / "bench-run.toml"  # kept beside the report it made
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"evals = {json.dumps(evals)}\n")  # a JSON list of strings is a TOML array
        config = [str(path)]
    load = os.getloadavg()
    started = time.monotonic()
    saftool(args.store, "run", *config, "--out", args.out)
    wall = time.monotonic() - started
    with open(Path(args.out) / "scores.csv", newline="", encoding="utf-8") as fh:
        scores = {(r["model"], r["eval_set"], r["metric"]): r for r in csv.DictReader(fh)}
    models = list(dict.fromkeys(model for model, _, _ in scores))
    print("| model | " + " | ".join(f"{metric[:5]}. {eval_set}" for eval_set, metric in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for model in models:
        cells = []
        for eval_set, metric in COLUMNS:
            row = scores.get((model, names.get(eval_set, eval_set), metric))
            cells.append("–" if row is None else cell(row))
        print(f"| {model} | " + " | ".join(cells) + " |")
    print(f"smollm2_grid: saftool run took {wall:.0f} s (load average at the start {load[0]:.1f}, at the end "
          f"{os.getloadavg()[0]:.1f}); per stage: {args.store}/runs/*.done/")  # fmt: skip


if __name__ == "__main__":
    main()
