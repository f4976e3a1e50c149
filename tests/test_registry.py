from __future__ import annotations

import pytest

from saftool.errors import MissingDependencyError, UsageError
from saftool.registry import Registry


def test_lookup_imports_lazily_by_name():
    registry = Registry("thing", {"json": "json:dumps", "path": "pathlib:Path"})
    import json

    assert registry.load("json") is json.dumps
    assert registry.names() == ["json", "path"]


def test_prefixed_name_resolves_to_prefix():
    registry = Registry("judge", {"hf": "pathlib:Path"})
    from pathlib import Path

    assert registry.load("hf:/models/guard") is Path


def test_unknown_name_lists_choices():
    registry = Registry("backend", {"template": "json:dumps", "openai": "json:loads"})
    with pytest.raises(UsageError, match="unknown backend 'nope'; choose one of: template, openai"):
        registry.load("nope")


def test_missing_optional_package_gives_install_hint():
    registry = Registry("backend", {"vllm": "json:dumps"}, requires={"vllm": ("surely_not_installed_pkg", "vllm")})
    with pytest.raises(MissingDependencyError, match=r"pip install 'saftool\[vllm\]'"):
        registry.load("vllm")
