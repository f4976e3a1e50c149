from __future__ import annotations

import subprocess
import sys

import pytest

from saftool.cli import app
from saftool.io import to_json_line
from saftool.presets import resolve_config
from saftool.records import Response
from saftool.store import Store
from saftool.train import train
from tests.modelfix import eval_items, write_eval, write_mix


@pytest.fixture(scope="module")
def model_store(tmp_path_factory) -> Store:
    store = Store(tmp_path_factory.mktemp("cli-infer") / "store")
    write_mix(store)
    train("m", resolve_config("smoke"), store=store)
    write_eval(store, "ev", n=6)
    return store


def test_infer_eval_sets_into_the_store(runner, model_store):
    result = runner.invoke(
        app,
        ["--store", str(model_store.root), "infer", "--model", "m", "--eval", "ev", "--max-new-tokens", "4"],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "ev: 9 answered, 0 already done" in result.stderr
    assert len(model_store.responses_path("m", "ev").read_text().splitlines()) == 9


def test_infer_stdin_to_stdout(runner, model_store):
    stdin = "".join(to_json_line(i) + "\n" for i in eval_items(2))
    result = runner.invoke(
        app,
        [
            "--store",
            str(model_store.root),
            "infer",
            "--model",
            "m",
            "-i",
            "-",
            "-o",
            "-",
            "--max-new-tokens",
            "3",
        ],
        input=stdin,
    )
    assert result.exit_code == 0, result.output
    rows = [Response.model_validate_json(line) for line in result.stdout.splitlines()]
    assert len(rows) == 3 and {r.eval_set for r in rows} == {"stdin"}


def test_infer_errors(runner, model_store):
    base = ["--store", str(model_store.root), "infer"]
    result = runner.invoke(app, [*base, "--model", "m"])
    assert result.exit_code == 2 and result.stderr == "error: give --eval NAME[,NAME...] or -i FILE|-\n"
    result = runner.invoke(app, [*base, "--model", "nope", "--eval", "ev"])
    assert result.exit_code == 2 and result.stderr == "error: unknown model 'nope'; known: m\n"
    result = runner.invoke(app, [*base, "--model", "m", "--eval", "ev", "--device", "tpu"])
    assert (
        result.exit_code == 2
        and result.stderr == "error: unknown device 'tpu'; choose one of: auto, cpu, cuda\n"
    )


def test_load_in_4bit_is_an_hf_option(runner, isolated_store):
    result = runner.invoke(
        app, ["infer", "--model", "m", "--eval", "e", "--backend", "openai", "--load-in-4bit"]
    )
    assert result.exit_code == 2
    assert result.stderr == "error: --load-in-4bit is an option of the hf backend; the openai backend does not take it\n"
    result = runner.invoke(app, ["infer", "--model", "m", "--eval", "e", "--backend", "openai", "--dtype", "float32"])
    assert result.exit_code == 2
    assert result.stderr == "error: --dtype is an option of the hf backend; the openai backend does not take it\n"


def test_a_hub_id_missing_from_the_offline_cache(runner, model_store, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    result = runner.invoke(
        app,
        ["--store", str(model_store.root), "infer", "--model", "meta-llama/Llama-2-7b-hf@v2", "--eval", "ev"],
    )
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: meta-llama/Llama-2-7b-hf@v2 is not in the Hugging Face cache ({tmp_path / 'hf' / 'hub'}) and "
        "HF_HUB_OFFLINE is set: download it with `hf download meta-llama/Llama-2-7b-hf --revision v2`\n"
    )
    assert not (model_store.responses / "meta-llama_Llama-2-7b-hf").exists()


def test_a_shell_pipeline(model_store, tmp_path):
    """gen-style items on stdin -> infer -> responses on stdout, through the real executable."""
    items = "".join(to_json_line(i) + "\n" for i in eval_items(2))
    proc = subprocess.run(
        f"{sys.executable} -m saftool --store {model_store.root} infer --model m -i - -o - --max-new-tokens 2 | wc -l",
        shell=True,
        input=items,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "3"


def test_prompt_format_errors_come_before_any_model_loads(runner, model_store, monkeypatch):
    """--template chat on a tokenizer without one, --system outside chat: one line, exit 2, nothing
    written, and the weights never loaded."""
    from transformers import AutoModelForCausalLM

    def no_loading(*args, **kwargs):
        raise AssertionError("weights loaded")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", no_loading)
    base = ["--store", str(model_store.root), "infer", "--model", "m", "--eval", "ev"]
    written = sorted((p, p.read_bytes()) for p in model_store.responses.rglob("*") if p.is_file())
    refusals = [
        (
            ["--template", "chat"],
            "error: --template chat: m has no chat template (none in its tokenizer_config.json or "
            "chat_template.jinja); use --template alpaca or none\n",
        ),
        (["--system", "Be brief."], "error: --system is a chat turn: it goes with --template chat, not alpaca\n"),
        (["--max-memory", "1.5"], "error: --max-memory 1.5: give a share of the free memory, in (0, 1]\n"),
        (["--max-memory", "0"], "error: --max-memory 0: give a share of the free memory, in (0, 1]\n"),
        (["--max-memory", "-0.2"], "error: --max-memory -0.2: give a share of the free memory, in (0, 1]\n"),
        (["--decoder", "warp"], "error: unknown decoder 'warp'; choose one of: auto, slots, paged, loop\n"),
        (["--dtype", "fp8"], "error: unknown dtype 'fp8'; choose one of: auto, float32, bfloat16\n"),
        (["--template", "llama"], "error: unknown template 'llama'; choose one of: alpaca, chat, none\n"),
    ]
    for options, error in refusals:
        result = runner.invoke(app, [*base, *options])
        assert result.exit_code == 2, options
        assert result.stderr == error
    assert sorted((p, p.read_bytes()) for p in model_store.responses.rglob("*") if p.is_file()) == written
