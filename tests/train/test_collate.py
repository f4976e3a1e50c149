from __future__ import annotations

from saftool.train.collate import RowPackingCollator


def test_row_packing_collator_packs_without_mixing_examples():
    examples = [
        {"input_ids": [5] * n, "labels": [-100] * (n - 2) + [7, 8]} for n in (9, 3, 6, 4, 3)
    ]
    batch = RowPackingCollator(pad_token_id=0, row_length=10)(examples)
    ids, labels, pos = batch["input_ids"], batch["labels"], batch["position_ids"]
    assert ids.shape[0] == 3 and int((ids == 5).sum()) == 25  # 25 real tokens in 3 rows, none lost
    assert int((labels != -100).sum()) == 10  # each example's two answer tokens, nothing else
    starts = pos == 0
    assert bool((labels[starts] == -100).all())  # no example's first token is predicted across a boundary
    assert pos[0].tolist()[:9] == list(range(9))  # positions restart per example
