"""mix speed: 52,000 Alpaca base records + 700 harmful (goal < 3 s), as `saftool mix` runs it
(read, validate, restyle, shuffle, write, manifest).

    python bench/mix_speed.py
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from saftool.gen import GenConfig, generate
from saftool.io import write_records
from saftool.mix import MixConfig, build_mix, write_mix
from saftool.store import Store

BASE = 52_000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SAFTOOL_STORE"] = tmp
        base = Path(tmp) / "alpaca.json"
        # An Alpaca-style JSON array, the format of tatsu-lab's alpaca_data.json.
        rows = [
            {
                "instruction": f"Write a sentence about topic {i}.",
                "input": "" if i % 3 else f"context {i}",
                "output": f"A sentence about topic {i}.",
            }
            for i in range(BASE)
        ]
        base.write_text(json.dumps(rows, indent=4))
        harm = Path(tmp) / "harm.jsonl"
        write_records(generate(GenConfig(n=700, diverse=False)), harm)

        start = time.perf_counter()
        items, manifest = build_mix(
            MixConfig(name="bench", n_harm=700, style="long", base=str(base), harm=str(harm)), Store(tmp)
        )
        done = write_mix(items, manifest, Store(tmp).mix_path("bench"))
        seconds = time.perf_counter() - start
    assert done.n_total == BASE + 700
    print(f"mix {BASE:,} base + 700 harmful: {seconds:.2f} s (goal < 3 s, {3 / seconds:.1f}x margin)")
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"mix_52700_seconds: {seconds:.2f}")


if __name__ == "__main__":
    main()
