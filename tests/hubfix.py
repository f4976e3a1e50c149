"""A Hugging Face cache laid out as huggingface_hub lays it out, filled from a local model directory.

HF_HOME/hub/models--ORG--NAME/
  blobs/<sha256>                     each file's bytes, once
  snapshots/<commit>/<file>          relative symlinks into blobs/
  refs/main                          the commit a branch or tag points at (no trailing newline)
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def cache_model(
    hf_home: Path, repo_id: str, source: Path, commit: str = COMMIT, refs: tuple[str, ...] = ("main",)
) -> Path:
    """Put `source`'s files into the cache under `hf_home` as `repo_id` at `commit`; the snapshot folder."""
    repo = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    for file in sorted(p for p in source.rglob("*") if p.is_file()):
        data = file.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / file.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    for ref in refs:
        (repo / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    return snapshot
