"""What the judge stage of a grid costs with each offline judge, on a store's own answers.

    python bench/judge_cost.py --store store [--grid-seconds 420] [--judges keyword,learned]

Copies the store's responses into a temporary store and times `saftool judge --judge NAME` over
all of them, once per judge, each in a fresh process as `saftool run`'s judge stage is (so the
learned judge pays its import and MiniLM load): wall seconds and CPU seconds (user + system of the
process). With `--grid-seconds` (the grid's wall time without the judge stage, e.g. 420 for the
quick start's 7 minutes), it prints each judge's share of it. Last line:
`judge_stage_seconds_learned_minus_keyword: VALUE`, the wall time the default judge adds.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True, help="a store whose responses/ a grid wrote")
    ap.add_argument("--judges", default="keyword,learned")
    ap.add_argument("--grid-seconds", type=float, default=None)
    args = ap.parse_args()
    responses = Path(args.store) / "responses"
    if not responses.is_dir():
        sys.exit(f"no responses in {args.store}: run the grid (or `saftool infer`) first")
    answers = sum(1 for p in responses.glob("*/*.jsonl") for _ in p.open())
    wall: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.judges.split(","):
            store = Path(tmp) / name
            shutil.copytree(responses, store / "responses")
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "saftool", "--store", str(store), "judge", "--judge", name],
                check=True,
                env={**os.environ, "SAFTOOL_NO_PROGRESS": "1"},
                stderr=subprocess.DEVNULL,
            )
            wall[name] = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            share = f", {wall[name] / args.grid_seconds:.1%} of the grid" if args.grid_seconds else ""
            print(f"{name:10s} {answers} answers: {wall[name]:6.1f} s wall, {cpu:6.1f} s CPU{share}")
    if {"keyword", "learned"} <= set(wall):
        print(f"judge_stage_seconds_learned_minus_keyword: {wall['learned'] - wall['keyword']:.1f}")


if __name__ == "__main__":
    main()
