"""Shared fixtures: every test gets its own empty store; ../shared is found or the test skips."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SAFTOOL_SHARED", ROOT.parent / "shared"))


@pytest.fixture(autouse=True)
def isolated_store(tmp_path, monkeypatch) -> Path:
    """Point SAFTOOL_STORE at a fresh folder and keep API settings out of the tests."""
    store = tmp_path / "store"
    monkeypatch.setenv("SAFTOOL_STORE", str(store))
    monkeypatch.setenv("SAFTOOL_NO_PROGRESS", "1")
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return store


@pytest.fixture
def shared() -> Path:
    """The read-only public data beside the project; skip where it is absent (a user's fresh clone)."""
    if not (SHARED / "data").is_dir():
        pytest.skip(f"shared data not found at {SHARED} (set SAFTOOL_SHARED)")
    return SHARED


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def fake_openai(monkeypatch):
    """A started FakeChatServer with OPENAI_BASE_URL and a dummy key pointed at it."""
    from tests.fake_openai import FakeChatServer

    with FakeChatServer(slow_seconds=2.0) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-key")
        yield server
