"""The default grid (`saftool run`, SmolLM2-135M) on the quick start's offline sets and the study's public sets.

    python bench/smollm2_grid.py [--store DIR] [--config RUN.toml] [--out DIR] [--shared ../shared]

Imports AdvBench, Do-Not-Answer, BeaverTails, seed-safe and XSTest from `../shared/data` into the
store (`saftool data pull NAME --from FILE`), so the grid's `@store` evals include them, then runs
`saftool run` there and times it, and prints each model's scores with their 95% intervals from the
report's scores.csv: safety on the harmful sets, conservativeness on the safe ones. Skips with a
reason (exit 0) where ../shared is absent: a fresh clone has only the offline sets, which the quick
start's `saftool run` scores alone. A rerun in the same store skips every finished stage.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=ROOT / "store")
    parser.add_argument("--config", help="run config [default: the built-in grid]")
    parser.add_argument("--out", default="figs")
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("SAFTOOL_SHARED", ROOT.parent / "shared")))
    args = parser.parse_args()
    data = args.shared / "data"
    if not data.is_dir():
        print(f"smollm2_grid: skipped: {data} is absent (the public sets are read from there)")
        return
    for name, path in PUBLIC.items():
        saftool(args.store, "data", "pull", name, "--from", str(data / path))
    load = os.getloadavg()
    started = time.monotonic()
    saftool(args.store, "run", *([args.config] if args.config else []), "--out", args.out)
    wall = time.monotonic() - started
    with open(Path(args.out) / "scores.csv", newline="", encoding="utf-8") as fh:
        scores = {(r["model"], r["eval_set"], r["metric"]): r for r in csv.DictReader(fh)}
    models = list(dict.fromkeys(model for model, _, _ in scores))
    print("| model | " + " | ".join(f"{metric[:5]}. {eval_set}" for eval_set, metric in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for model in models:
        cells = []
        for eval_set, metric in COLUMNS:
            row = scores.get((model, eval_set, metric))
            cells.append("–" if row is None else
                         f"{float(row['score']):.1f} [{float(row['low']):.1f}, {float(row['high']):.1f}] (n={row['n']})")  # fmt: skip
        print(f"| {model} | " + " | ".join(cells) + " |")
    print(f"smollm2_grid: saftool run took {wall:.0f} s (load average at the start {load[0]:.1f}, at the end "
          f"{os.getloadavg()[0]:.1f}); per stage: {args.store}/runs/*.done/")  # fmt: skip


if __name__ == "__main__":
    main()
