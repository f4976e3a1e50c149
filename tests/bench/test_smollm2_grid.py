"""bench/smollm2_grid.py's sample of the public sets: what its table's n means."""

from __future__ import annotations

import importlib.util

from saftool.io import read_records, write_records
from saftool.records import Item
from saftool.store import Store
from tests.conftest import ROOT


def _bench():
    spec = importlib.util.spec_from_file_location("smollm2_grid", ROOT / "bench" / "smollm2_grid.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sample_takes_n_of_each_kind_at_random_in_file_order(isolated_store):
    store = Store(isolated_store)
    kinds = ["harmful"] * 30 + ["benign"] * 4  # more harmful prompts than asked for, fewer safe ones
    items = [Item(id=f"set-{i:05d}", instruction=f"prompt {i}", kind=kind, source="set", split="eval")
             for i, kind in enumerate(kinds)]  # fmt: skip
    store.evals.mkdir(parents=True)
    write_records(items, store.eval_path("set"))
    bench = _bench()

    name = bench.sample_per_kind(isolated_store, "set", 10)
    sample = [item.id for item in read_records(store.eval_path(name), Item)]
    assert name == "set-10" and len(sample) == 14
    assert sample == sorted(sample)  # the file's order
    harmful = [i for i in sample if int(i[4:]) < 30]
    assert len(harmful) == 10 and harmful != [f"set-{i:05d}" for i in range(10)]  # random, not the first 10
    assert set(sample) - set(harmful) == {f"set-{i:05d}" for i in range(30, 34)}  # all 4 safe ones
    assert bench.sample_per_kind(isolated_store, "set", 10) == name
    assert [item.id for item in read_records(store.eval_path(name), Item)] == sample  # the same draw again


def test_cell_shows_the_corrected_score_where_the_report_has_one():
    bench = _bench()
    raw = {"score": "85.0", "low": "73.9", "high": "91.9", "n": "60", "corrected": "", "corrected_low": ""}
    assert bench.cell(raw) == "85.0 [73.9, 91.9] (n=60)"
    corrected = {**raw, "corrected": "86.7", "corrected_low": "74.0", "corrected_high": "95.1"}
    assert bench.cell(corrected) == "85.0 [73.9, 91.9] (n=60)<br>corr. 86.7 [74.0, 95.1]"
