"""gen speed: template --no-diverse n=10000 (goal < 5 s) and diverse 700 from ~3,000 candidates (goal < 60 s).

    python bench/gen_speed.py

Runs the library exactly as `saftool gen` does, writing to a temporary file.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from saftool.gen import GenConfig, generate
from saftool.io import write_records


def timed(config: GenConfig, dst: Path) -> float:
    start = time.perf_counter()
    count = write_records(generate(config), dst)
    assert count == config.n
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SAFTOOL_STORE"] = tmp
        plain = timed(GenConfig(n=10000, diverse=False), Path(tmp) / "plain.jsonl")
        print(f"template --no-diverse n=10000: {plain:.2f} s (goal < 5 s, {5 / plain:.1f}x margin)")
        diverse = timed(GenConfig(n=700), Path(tmp) / "diverse.jsonl")
        config = GenConfig(n=700)
        print(
            f"diverse n=700 from {config.pool_size()} candidates: {diverse:.1f} s (goal < 60 s, {60 / diverse:.1f}x margin)"
        )
        print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"gen_diverse_700_seconds: {diverse:.1f}")


if __name__ == "__main__":
    main()
