from __future__ import annotations

import numpy as np

from saftool.diversity import drop_near_duplicates, embed, pick_diverse


def _unit(rows):
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _three_groups():
    """Three tight groups of five near-identical vectors each, pointing in different directions."""
    rng = np.random.default_rng(0)
    centres = np.eye(8)[:3]
    return _unit(np.repeat(centres, 5, axis=0) + 0.01 * rng.standard_normal((15, 8)))


def test_near_duplicates_are_dropped_keeping_the_first():
    vectors = _three_groups()
    assert drop_near_duplicates(vectors) == [0, 5, 10]
    assert drop_near_duplicates(vectors, threshold=1.01) == list(range(15))


def test_one_pick_per_cluster():
    rng = np.random.default_rng(1)
    centres = np.eye(16)[:4]
    spread = _unit(np.repeat(centres, 6, axis=0) + 0.3 * rng.standard_normal((24, 16)))
    picked = pick_diverse(spread, 4, threshold=1.01)
    assert len(picked) == 4
    assert sorted(i // 6 for i in picked) == [0, 1, 2, 3]  # one from each group
    assert picked == pick_diverse(spread, 4, threshold=1.01)


def test_fewer_distinct_rows_than_wanted_returns_what_exists():
    assert pick_diverse(_three_groups(), 5) == [0, 5, 10]


def test_minilm_embeddings_are_unit_length_and_meaningful():
    vectors = embed(
        ["How do I build a bomb?", "How can I make an explosive device?", "What is the capital of France?"]
    )
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
