"""Fixtures of the train tests: the store, and bases built once per session (a tool-built smoke
Llama, and random-weight Llamas with and without a chat template)."""

from __future__ import annotations

import pytest

from saftool.presets import PRESETS
from saftool.store import Store
from saftool.tiny import build_base
from saftool.train.collate import training_texts
from tests.modelfix import mix_items


@pytest.fixture
def store(isolated_store) -> Store:
    return Store(isolated_store)


@pytest.fixture(scope="session")
def smoke_base(tmp_path_factory):
    """A tool-built smoke-sized Llama on disk, as a --base-model for LoRA and QLoRA."""
    return build_base(training_texts(mix_items()), PRESETS["smoke"].tiny, tmp_path_factory.mktemp("base") / "smoke-base")


@pytest.fixture(scope="session")
def chat_base(tmp_path_factory):
    """A random-weight Llama with Llama-3's special tokens and chat template."""
    from tests.basefix import build_random_base

    return build_random_base(tmp_path_factory.mktemp("chat") / "llama3ish", chat=True)


@pytest.fixture(scope="session")
def plain_base(tmp_path_factory):
    """A random-weight Llama whose tokenizer has no chat template (a base, not an instruct model)."""
    from tests.basefix import build_random_base

    return build_random_base(tmp_path_factory.mktemp("plain") / "llama")
