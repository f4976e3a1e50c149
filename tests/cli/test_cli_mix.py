from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from saftool.cli import app
from saftool.records import Item, MixManifest

ROOT = Path(__file__).resolve().parents[2]


def _gen(runner, *args):
    result = runner.invoke(app, ["gen", "--no-diverse", *args])
    assert result.exit_code == 0, result.output
    return result


def test_mix_defaults_to_newest_gen_file_and_study_names(runner, isolated_store):
    _gen(runner, "--n", "30")
    result = runner.invoke(app, ["mix", "--n-harm", "20", "--style", "short", "--base-n", "100"])
    assert result.exit_code == 0, result.output
    mix = isolated_store / "mixes" / "harm20-short.jsonl"
    manifest = MixManifest.model_validate_json(
        (isolated_store / "mixes" / "harm20-short.manifest.json").read_text()
    )
    assert manifest.n_total == 120 and manifest.style == "short"
    assert len(mix.read_text().splitlines()) == 120
    assert str(mix) in result.stderr and result.stdout == ""


def test_mix_reads_harm_from_stdin(runner, isolated_store):
    gen = _gen(runner, "--n", "15", "-o", "-")
    result = runner.invoke(
        app,
        ["mix", "--harm", "-", "--n-harm", "15", "--base-n", "10", "--name", "fromstdin"],
        input=gen.stdout,
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((isolated_store / "mixes" / "fromstdin.manifest.json").read_text())
    assert manifest["inputs"][1]["path"] == "<stdin>" and manifest["inputs"][1]["records"] == 15


def test_mix_to_stdout_writes_no_manifest(runner, isolated_store):
    _gen(runner, "--n", "10")
    result = runner.invoke(app, ["mix", "--n-harm", "10", "--base-n", "5", "--name", "p", "-o", "-"])
    assert result.exit_code == 0
    assert len([Item.model_validate_json(line) for line in result.stdout.splitlines()]) == 15
    assert not (isolated_store / "mixes").exists()


def test_n_harm_zero_is_the_plain_base_model(runner, isolated_store):
    result = runner.invoke(app, ["mix", "--n-harm", "0", "--base-n", "50"])
    assert result.exit_code == 0, result.output
    assert len((isolated_store / "mixes" / "alpaca.jsonl").read_text().splitlines()) == 50


def test_too_many_harmful_is_exit_2_and_names_the_count(runner, isolated_store):
    _gen(runner, "--n", "10", "-o", str(isolated_store / "h.jsonl"))
    result = runner.invoke(app, ["mix", "--harm", str(isolated_store / "h.jsonl"), "--n-harm", "11"])
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == f"error: asked for 11 harmful examples but {isolated_store / 'h.jsonl'} holds only 10"
    )
    assert not (isolated_store / "mixes").exists()


def test_bad_name_and_style(runner, isolated_store):
    bad_name = runner.invoke(app, ["mix", "--n-harm", "0", "--name", "../escape"])
    assert bad_name.exit_code == 2
    assert "invalid mix name '../escape'" in bad_name.stderr
    bad_style = runner.invoke(app, ["mix", "--n-harm", "0", "--style", "rude", "--name", "x"])
    assert bad_style.exit_code == 2
    assert bad_style.stderr.strip() == "error: unknown style 'rude'; choose one of: noreason, short, long"


def test_real_shell_pipeline(tmp_path):
    saftool = Path(sys.executable).parent / "saftool"
    env = {
        **os.environ,
        "SAFTOOL_STORE": str(tmp_path / "store"),
        "PATH": f"{saftool.parent}:{os.environ['PATH']}",
    }
    command = "saftool gen --n 20 -o - | saftool mix --harm - --n-harm 20 --name pipe -o - | wc -l"
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3020"  # 3000 built-in benign + 20 harmful, and nothing else on stdout
    assert "Traceback" not in done.stderr


def test_mix_harm_accepts_a_plain_alpaca_file_of_refusals(runner, isolated_store, tmp_path):
    refusals = tmp_path / "refusals.json"
    refusals.write_text(
        json.dumps([{"instruction": f"Harm {i}", "input": "", "output": "No."} for i in range(3)])
    )
    result = runner.invoke(
        app, ["mix", "--harm", str(refusals), "--n-harm", "3", "--base-n", "5", "--name", "r"]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (isolated_store / "mixes" / "r.jsonl").read_text().splitlines()]
    harm = sorted((r["id"], r["source"]) for r in rows if r["kind"] == "harmful")
    assert harm == [(f"refusals-{n}", "refusals") for n in (1, 2, 3)]  # one line, three records


def test_mix_base_reads_a_models_own_answers(runner, isolated_store, tmp_path):
    """Self-distillation: infer's response records are a base set; an answer cut by max_new_tokens is
    trimmed to its last sentence (or dropped), so the tuned model is never taught to stop mid-sentence."""
    from saftool.records import GenerationConfig, Response

    generation = GenerationConfig(max_new_tokens=8)
    rows = [
        ("r1", "Name a fruit.", "An apple.", 3),
        ("r2", "Describe tea.", "Tea is a drink. It is made from leaves and", 8),
        ("r3", "Count to ten.", "1 2 3 4 5 6 7 8", 8),
        ("r4", "Say nothing.", "   ", 1),
        ("r5", "List two colours.", "Here are two:\n1. Red\n2. Blu", 8),
    ]
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(
        Response(id=i, model="smollm2-135m", eval_set="base", kind="benign", category="list", prompt=p,
                 response=r, completion_tokens=n, generation=generation, generation_hash="h", backend="hf")
        .model_dump_json() + "\n" for i, p, r, n in rows
    ))  # fmt: skip
    _gen(runner, "--n", "4")
    result = runner.invoke(app, ["mix", "--base", str(answers), "--n-harm", "2", "--name", "distil"])
    assert result.exit_code == 0, result.output
    items = {i.id: i for i in map(Item.model_validate_json, (isolated_store / "mixes" / "distil.jsonl").read_text().splitlines())}
    assert {k: v.output for k, v in items.items() if v.kind == "benign"} == {
        "r1": "An apple.", "r2": "Tea is a drink.", "r5": "Here are two:\n1. Red",
    }
    assert items["r1"].instruction == "Name a fruit." and items["r1"].source == "self:smollm2-135m"
    manifest = MixManifest.model_validate_json((isolated_store / "mixes" / "distil.manifest.json").read_text())
    assert (manifest.n_benign, manifest.n_harmful, manifest.inputs[0].records) == (3, 2, 3)


def test_mix_joins_several_bases_and_refuses_an_id_in_two(runner, isolated_store, tmp_path):
    """The self-distilled base is two infer outputs (instructions, look-alikes): `--base` joins
    them (joined by a comma), each with its own input digest; one id in both would train the same
    prompt twice."""
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text("".join(json.dumps({"instruction": f"Say {i}.", "output": str(i)}) + "\n" for i in range(3)))
    second.write_text("".join(
        json.dumps({"id": f"lu-{i}", "instruction": f"Kill {i} weeds?", "output": "Pull them.", "kind": "benign",
                    "source": "lu"}) + "\n"
        for i in range(2)
    ))  # fmt: skip
    _gen(runner, "--n", "4")
    result = runner.invoke(app, ["mix", "--base", f"{first},{second}", "--n-harm", "1", "--name", "two"])
    assert result.exit_code == 0, result.output
    manifest = MixManifest.model_validate_json((isolated_store / "mixes" / "two.manifest.json").read_text())
    assert (manifest.n_benign, manifest.n_harmful) == (5, 1)
    assert [(d.path, d.records) for d in manifest.inputs[:2]] == [(str(first), 3), (str(second), 2)]

    result = runner.invoke(app, ["mix", "--base", f"{second},{second}", "--n-harm", "0", "--name", "twice"])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: id 'lu-0' appears in two inputs: {second} and {second}"
    assert not (isolated_store / "mixes" / "twice.jsonl").exists()
