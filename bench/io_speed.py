"""Read + validate speed of `saftool.io.read_records` (goal >= 100,000 records/s), against plain
`json.loads` over the same lines as the baseline.

    python bench/io_speed.py
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from saftool.gen import GenConfig, generate
from saftool.io import read_records, write_records
from saftool.records import Item

N = 200_000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "records.jsonl"
        # Realistic records (with provenance and all three responses), repeated to N with new ids.
        sample = [item.model_dump() for item in generate(GenConfig(n=2000, diverse=False))]
        write_records(({**sample[i % len(sample)], "id": f"r{i}"} for i in range(N)), path)

        start = time.perf_counter()
        with open(path, encoding="utf-8") as fh:
            baseline = sum(1 for line in fh if json.loads(line))
        base_s = time.perf_counter() - start

        start = time.perf_counter()
        count = sum(1 for _ in read_records(path, Item))
        ours_s = time.perf_counter() - start
    assert count == baseline == N
    rate = N / ours_s
    print(f"json.loads only:          {N / base_s:,.0f} records/s")
    print(f"read_records + validation: {rate:,.0f} records/s ({ours_s / base_s:.2f}x the json.loads time)")
    print(f"goal >= 100,000 records/s: {'met' if rate >= 100_000 else 'MISSED'}")
    print(f"io_read_validate_records_per_s: {rate:.0f}")


if __name__ == "__main__":
    main()
