"""Where local models run: one rule for `train`, the local `infer` backends and the `hf:` judge."""

from __future__ import annotations

from saftool.errors import SaftoolError, UsageError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str) -> bool:
    """True to run on CUDA. `cuda` without a visible GPU is an error, not a silent CPU run."""
    if device not in DEVICES:
        raise UsageError(f"unknown device {device!r}; choose one of: {', '.join(DEVICES)}")
    import torch

    available = torch.cuda.is_available()
    if device == "cuda" and not available:
        raise SaftoolError("a GPU was asked for (--device cuda or a GPU preset), but no CUDA device is visible")
    return available and device != "cpu"
