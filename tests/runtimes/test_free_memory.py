"""The free GPU memory batch sizes are derived from (`--decoder loop` and sampling, `HFRuntime._rows`):
blocks PyTorch's caching allocator keeps after a batch are free to the next one. No GPU: the three
torch.cuda memory calls are replaced, nothing else."""

from __future__ import annotations

from unittest import mock

import pytest

MB = 2**20


def _gpu(free: int, reserved: int, allocated: int):
    """torch.cuda's memory readings replaced: the driver's free bytes, the allocator's reserved and
    allocated bytes (reserved - allocated is cached: held by PyTorch, used by no tensor)."""
    import torch

    return mock.patch.multiple(
        torch.cuda,
        mem_get_info=mock.Mock(return_value=(free, 80 * 1024 * MB)),
        memory_reserved=mock.Mock(return_value=reserved),
        memory_allocated=mock.Mock(return_value=allocated),
    )


def test_cached_blocks_count_as_free():
    import torch

    from saftool.runtimes.local import free_memory

    with _gpu(free=8 * MB, reserved=32 * MB, allocated=20 * MB):
        assert free_memory(torch.device("cuda")) == 20 * MB


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    """The tiny Llama-3 on the CPU, its weights loaded, then pointed at a "cuda" device so `_rows`
    reads the (replaced) GPU memory; no tensor is made on it."""
    import torch

    from saftool.runtimes.hf import HFRuntime
    from tests.runtimes.archfix import build_model

    folder = build_model("llama3", tmp_path_factory.mktemp("free") / "llama3")
    rt = HFRuntime(str(folder), HFRuntime.Options(batch_size=64, device="cpu", decoder="loop", max_memory=0.5))
    rt.model  # noqa: B018 - loaded now, on the CPU
    rt.device = torch.device("cuda")
    return rt


def test_batches_after_the_first_are_not_shrunk_by_the_allocators_cache(runtime):
    """The first batch sees 20 MB free; after it the allocator keeps its 12 MB cache (reserved, not
    allocated) and the driver reports 8 MB free. The next batch must see the same 20 MB: before, it
    was sized from 8 MB, 40% of the first, and shrank again after each batch."""
    from saftool.runtimes.local import kv_bytes_per_token

    span = 1000
    row = kv_bytes_per_token(runtime.config, runtime.dtype.itemsize) * span
    expected = int(20 * MB * 0.5) // row
    assert 1 < expected < 64
    with _gpu(free=20 * MB, reserved=14 * MB, allocated=14 * MB):  # the weights, nothing cached
        first = runtime._rows(span)
    with _gpu(free=8 * MB, reserved=26 * MB, allocated=14 * MB):  # the first batch's cache kept
        later = runtime._rows(span)
    assert first == later == expected

    # _batches (the loop's and sampling's batches) takes its sizes from _rows, batch after batch
    encoded, new = [[1] * (span - 10)] * 100, 10
    with _gpu(free=8 * MB, reserved=26 * MB, allocated=14 * MB):
        sizes = [len(b) for b in runtime._batches(encoded, list(range(100)), new)]
    assert sizes[:-1] == [expected] * (len(sizes) - 1) and sum(sizes) == 100
