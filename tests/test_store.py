from __future__ import annotations

import os
import time

import pytest

from saftool.errors import UsageError
from saftool.store import Store, check_name, resolve_store_root, slug


def test_store_root_flag_then_env_then_default(monkeypatch, tmp_path):
    monkeypatch.setenv("SAFTOOL_STORE", str(tmp_path / "env"))
    assert resolve_store_root(tmp_path / "flag") == tmp_path / "flag"
    assert resolve_store_root(None) == tmp_path / "env"
    monkeypatch.delenv("SAFTOOL_STORE")
    assert str(resolve_store_root(None)) == "store"


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "..", "a\\b", ".hidden", "sp ace"])
def test_unsafe_names_are_rejected(bad):
    with pytest.raises(UsageError, match="invalid mix name"):
        check_name(bad, "mix name")


def test_good_names_pass():
    for name in ("harm700", "harm350-short", "llama2.7b", "a_b+c"):
        assert check_name(name) == name


def test_unknown_mix_lists_known_names(isolated_store):
    store = Store()
    with pytest.raises(UsageError, match="none yet"):
        store.require_mix("harm700")
    store.mixes.mkdir(parents=True)
    (store.mixes / "harm350.jsonl").write_text("")
    (store.mixes / "alpaca.jsonl").write_text("")
    with pytest.raises(UsageError, match=r"unknown mix 'harm700'; known: alpaca, harm350"):
        store.require_mix("harm700")
    assert store.require_mix("alpaca") == store.mixes / "alpaca.jsonl"


def test_newest_prompts_picks_latest_of_its_kind(isolated_store):
    store = Store()
    assert store.newest_prompts() is None
    store.prompts.mkdir(parents=True)
    old = store.prompts / "harmful-train-a.jsonl"
    new = store.prompts / "harmful-train-b.jsonl"
    other = store.prompts / "benign-train-c.jsonl"
    for path in (old, new, other):
        path.write_text("")
    past = time.time() - 100
    os.utime(old, (past, past))
    assert store.newest_prompts("harmful", "train") == new
    assert store.newest_prompts("benign", "train") == other
    assert store.newest_prompts("harmful", "eval") is None


def test_slug_makes_backend_names_file_safe():
    assert slug("llm:gpt-4o-mini") == "llm_gpt-4o-mini"
    assert slug("hf:/models/llama-guard") == "hf_models_llama-guard"
