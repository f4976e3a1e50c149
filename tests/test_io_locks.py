"""Two real processes on one output: `io.output_lock` makes the second wait (infer, judge) or refuse (train).

The test process itself holds the output's lock while it starts two `saftool` processes, so both
are certain to meet it (without a lock they would both write at once); it lets go once both say
they are waiting, and the two then run one after the other.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from saftool.errors import UsageError
from saftool.io import iter_json_objects, lock_path, output_lock
from saftool.presets import resolve_config
from saftool.store import Store
from saftool.train import train
from tests.modelfix import write_eval, write_mix
from tests.storefix import build_store

HOLDER = f"pid {os.getpid()} on host {socket.gethostname()}"


def _saftool(store: Path, *argv: str, stderr) -> subprocess.Popen:
    env = {**os.environ, "SAFTOOL_NO_PROGRESS": "1"}
    return subprocess.Popen([sys.executable, "-m", "saftool", "--store", str(store), *argv],
                            stdout=subprocess.DEVNULL, stderr=stderr, env=env)  # fmt: skip


def _both_after_the_lock(tmp_path: Path, store: Path, output: Path, argv: list[str]) -> list[str]:
    """Run `saftool ARGV` twice at once while this process holds `output`'s lock; their stderr."""
    logs = [tmp_path / f"run{n}.err" for n in (1, 2)]
    with output_lock(output, wait=False):
        procs = [_saftool(store, *argv, stderr=open(log, "w")) for log in logs]  # noqa: SIM115
        deadline = time.monotonic() + 120
        while not all(f"is being written by {HOLDER}; waiting" in log.read_text() for log in logs):
            assert all(p.poll() is None for p in procs), [log.read_text() for log in logs]
            assert time.monotonic() < deadline, [log.read_text() for log in logs]
            time.sleep(0.1)
    for proc in procs:
        proc.wait(timeout=300)
    errors = [log.read_text() for log in logs]
    assert [p.returncode for p in procs] == [0, 0], errors
    return errors


@pytest.fixture(scope="module")
def model_store(tmp_path_factory) -> Store:
    store = Store(tmp_path_factory.mktemp("locks") / "store")
    write_mix(store)
    train("m", resolve_config("smoke"), store=store)
    write_eval(store, "ev", n=8)  # 8 benign and 4 harmful prompts
    return store


@pytest.mark.slow
def test_two_infer_processes_on_one_set_answer_each_prompt_once(tmp_path, model_store):
    out = model_store.responses_path("m", "ev")
    errors = _both_after_the_lock(tmp_path, model_store.root, out, ["infer", "--model", "m", "--eval", "ev"])
    ids = Counter(obj["id"] for _, obj in iter_json_objects(out))
    assert len(ids) == 12 and set(ids.values()) == {1}
    # one answered all twelve; the other, let in after it, found them answered
    assert sorted("12 prompts (0 already answered)" in e for e in errors) == [False, True]
    assert sorted("0 prompts (12 already answered)" in e for e in errors) == [False, True]


def test_two_judge_processes_on_one_store_judge_each_answer_once(tmp_path):
    root = build_store(tmp_path / "store")
    out = Store(root).judgments_path("keyword", "alpaca", "advbench")
    argv = ["judge", "--judge", "keyword", "--for-model", "alpaca", "--eval-set", "advbench"]
    errors = _both_after_the_lock(tmp_path, root, out, argv)
    ids = Counter(obj["id"] for _, obj in iter_json_objects(out))
    assert len(ids) == 10 and set(ids.values()) == {1}
    assert sorted("judging 10 answers" in e for e in errors) == [False, True]


def test_a_second_train_of_one_model_is_refused_naming_the_first(tmp_path):
    store = Store(tmp_path / "store")
    write_mix(store)
    target = store.model_dir("m2")
    with output_lock(target, wait=False):
        second = subprocess.run(
            [sys.executable, "-m", "saftool", "--store", str(store.root), "train", "--mix", "m", "--name", "m2"],
            capture_output=True, text=True, env={**os.environ, "SAFTOOL_NO_PROGRESS": "1"},
        )  # fmt: skip
    assert second.returncode == 2
    assert second.stderr.strip() == (
        f"error: {target} is being written by {HOLDER} (lock {lock_path(target)}); wait for it to end, or stop it"
    )
    assert not target.exists()


def test_a_lock_ends_with_its_process_however_it_ends(tmp_path):
    out = tmp_path / "out.jsonl"
    hold = "import sys, time\nfrom saftool.io import output_lock\nwith output_lock(sys.argv[1], wait=False):\n" \
           "    print('held', flush=True)\n    time.sleep(600)\n"  # fmt: skip
    child = subprocess.Popen([sys.executable, "-c", hold, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "held\n"
        with pytest.raises(UsageError, match=rf"is being written by pid {child.pid} on host "), \
                output_lock(out, wait=False):  # fmt: skip
            pass
    finally:
        child.kill()  # SIGKILL: no cleanup runs, the kernel drops the lock
        child.wait()
    with output_lock(out, wait=False):
        assert lock_path(out).read_text() == HOLDER + "\n"
    assert lock_path(out).read_text() == ""  # released: it names nobody
