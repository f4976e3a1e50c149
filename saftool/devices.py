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


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (AMX-BF16 tiles or AVX512-BF16 dot products).

    Without either, oneDNN emulates bf16 in float32 and a bf16 model runs slower than a float32 one.
    torch answers from its own CPU feature probe (private names, hence the fallbacks); /proc/cpuinfo
    is the second opinion on Linux.
    """
    import torch

    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    if any(getattr(torch.cpu, name, lambda: False)() for name in probes):
        return True
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = next((line.split(":", 1)[1].split() for line in fh if line.startswith("flags")), [])
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags
