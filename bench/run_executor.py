"""`saftool run --executor local` against `run` before the executors existed, on the same grid.

    python bench/run_executor.py [--baseline REV] [--preset smoke|full] [--jobs 2] [--repeat 1]

The baseline is the saftool of git revision REV (default: the last commit before `saftool/run/`
became a package), checked out in a temporary worktree and put first on PYTHONPATH; the current one
is this checkout. Each side runs the grid (`--preset smoke`: the seven-model smoke grid; `full`:
the quick start's `saftool run`) in a fresh store and folder, the two sides alternating `--repeat`
times; the fastest run of each side counts (the one least disturbed by other processes). The last
line is `run_executor: local/baseline = N.NNx` (1.00x: as fast; the goal is at most 1.10x).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _default_baseline() -> str:
    split = subprocess.run(
        ["git", "log", "--format=%H", "--diff-filter=A", "-1", "--", "saftool/run/__init__.py"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if not split:
        sys.exit("run_executor: saftool/run/ is not committed here; pass --baseline REV")
    return f"{split}^"


def _run_grid(code: Path | None, preset: str, jobs: int) -> float:
    with tempfile.TemporaryDirectory(prefix="run-executor-") as folder:
        env = {**os.environ, "SAFTOOL_STORE": str(Path(folder) / "store"), "SAFTOOL_NO_PROGRESS": "1"}
        if code is not None:
            env["PYTHONPATH"] = str(code)
        argv = [sys.executable, "-m", "saftool", "run", "--jobs", str(jobs)]
        argv += ["--preset", "smoke"] if preset == "smoke" else []
        started = time.monotonic()
        subprocess.run(argv, cwd=folder, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=None, help="git revision of the baseline run")
    parser.add_argument("--preset", choices=["smoke", "full"], default="smoke")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    revision = args.baseline or _default_baseline()
    with tempfile.TemporaryDirectory(prefix="run-baseline-") as checkout:
        subprocess.run(["git", "worktree", "add", "--detach", checkout, revision], cwd=ROOT, check=True,
                       capture_output=True)  # fmt: skip
        try:
            times: dict[str, list[float]] = {"baseline": [], "local": []}
            for _ in range(args.repeat):
                for side, code in (("baseline", Path(checkout)), ("local", None)):
                    times[side].append(_run_grid(code, args.preset, args.jobs))
                    print(f"{side}: {times[side][-1]:.1f}s", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", checkout], cwd=ROOT, capture_output=True)
    best = {side: min(values) for side, values in times.items()}
    print(f"baseline {revision}: {best['baseline']:.1f}s; local executor: {best['local']:.1f}s")
    print(f"run_executor: local/baseline = {best['local'] / best['baseline']:.2f}x")


if __name__ == "__main__":
    main()
