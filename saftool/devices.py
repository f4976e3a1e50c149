"""Where local models run: one rule for `train`, the local `infer` backends and the `hf:` judge."""

from __future__ import annotations

import os

from saftool.errors import SaftoolError, UsageError

DEVICES = ("auto", "cpu", "cuda")


def yielding_cpu_threads() -> None:
    """Make torch's OpenMP threads sleep, not spin, while they wait; call it before torch loads
    (OpenMP reads the setting once, when the library starts). A user's own OMP_WAIT_POLICY wins.

    By default an idle OpenMP thread spins for a while at every barrier, waiting for the others. When
    another process holds a core, the thread it displaced cannot reach the barrier and its partner
    spins away the time slice instead: a LoRA step on SmolLM2-135M with 2 threads on the 2-core box,
    beside other work (load average 9), ran at 8 tokens/s spinning and 90 sleeping (1 thread: 82;
    bench/train_lora.py). Sleeping costs a wake-up per parallel region, small beside the matrices
    of a real model.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


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
