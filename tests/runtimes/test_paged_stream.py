"""The paged decoder (transformers' continuous batching, the default on CUDA) on the CPU: answers are
appended as they finish, so a killed `saftool infer` loses only what was in flight and a rerun leaves
exactly one answer per prompt; a budget too small for the cache is one line, exit 2, no answer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from saftool.cli import app
from saftool.store import Store
from tests.modelfix import write_eval
from tests.runtimes.archfix import build_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_model("llama3", tmp_path_factory.mktemp("paged") / "llama3")


def _lines(store_root) -> list[str]:
    paths = list((store_root / "responses").rglob("ev.jsonl"))
    return paths[0].read_text(encoding="utf-8").splitlines() if paths else []


def test_answers_reach_infer_while_the_set_is_still_decoding(isolated_store, tiny, monkeypatch):
    """The progress bar moves (and answers are written) as prompts finish: the first answer reaches
    `infer` after a few of the set's forward passes, not after the last one. Early stoppers finish
    within 20 tokens of the 200 the longest answers take (the model is taught to stop mid-answer)."""
    from contextlib import contextmanager

    import torch
    from transformers import LlamaForCausalLM

    from saftool import console
    from saftool.infer import infer
    from saftool.records import GenerationConfig
    from saftool.runtimes import load_runtime

    write_eval(Store(isolated_store), "ev", n=12)
    forwards = 0

    def count(module, args, output):
        nonlocal forwards
        if isinstance(module, LlamaForCausalLM):
            forwards += 1

    at_advance: list[int] = []  # forward passes done when the bar moved, answer by answer

    class Bar:
        def advance(self, n: float = 1) -> None:
            at_advance.append(forwards)

    @contextmanager
    def progress(description, total):
        yield Bar()

    monkeypatch.setattr(console, "progress", progress)
    hook = torch.nn.modules.module.register_module_forward_hook(count)
    try:
        runtime = load_runtime("hf", str(tiny), device="cpu", decoder="paged", batch_size=1)
        (result,) = infer(runtime, ["ev"], generation=GenerationConfig(max_new_tokens=200, template="chat"))
    finally:
        hook.remove()
    assert len(at_advance) == result.answered == 18
    assert at_advance[0] < forwards / 4, (at_advance, forwards)


@pytest.mark.slow
def test_a_killed_paged_run_keeps_its_finished_answers_and_resumes_without_duplicates(isolated_store, tiny):
    store = Store(isolated_store)
    write_eval(store, "ev", n=12)
    items = [json.loads(line)["id"] for line in store.require_eval("ev").read_text().splitlines()]
    command = [sys.executable, "-m", "saftool", "infer", "--model", str(tiny), "--eval", "ev", "--device", "cpu"]
    command += ["--decoder", "paged", "--template", "chat", "--max-new-tokens", "200", "--batch-size", "1"]
    env = {**os.environ, "SAFTOOL_STORE": str(isolated_store), "SAFTOOL_NO_PROGRESS": "1"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while not _lines(isolated_store):  # the prompts that stop early finish first, long before the rest
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "no answer written in time"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # no handler, no finally
    proc.wait()
    kept = len(_lines(isolated_store))
    assert 0 < kept < len(items), "the answers were not written as they finished"

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(items) - kept} prompts ({kept} already answered)" in rerun.stderr
    answered = [json.loads(line)["id"] for line in _lines(isolated_store)]
    assert sorted(answered) == sorted(items)


def test_a_budget_too_small_for_the_cache_is_one_line_and_exit_2(runner, isolated_store, tiny, monkeypatch):
    """transformers' own reading of the memory says the host has 1 KiB free: the plan refuses before
    generation starts, naming the option and the sizes, instead of transformers' MemoryError."""
    import torch
    from transformers.generation.continuous_batching import cache as cb_cache

    write_eval(Store(isolated_store), "ev", n=2)
    reading = (torch.device("cpu"), 8 * 2**30, 8 * 2**30 - 1024, 8 * 2**30 - 1024)  # total, reserved, allocated
    monkeypatch.setattr(cb_cache, "get_device_and_memory_breakdown", lambda: reading)
    result = runner.invoke(
        app, ["infer", "--model", str(tiny), "--eval", "ev", "--device", "cpu", "--decoder", "paged"]
    )
    assert result.exit_code == 2, result.output
    error = result.stderr.splitlines()[-1]
    assert error.startswith("error: --max-memory 0.8: 0.8 of the 0.00 GiB free (8.00 of 8.00 GiB in use, the weights ")
    assert "holds no paged KV cache for the longest prompt (" in error
    assert _lines(isolated_store) == []
    assert not any((isolated_store / "responses").rglob("*.jsonl")), "a failed run leaves no responses file"
