from __future__ import annotations

import pytest
from pydantic import Field

from saftool.errors import MissingDependencyError, UsageError
from saftool.registry import EngineOptions, Registry


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


class Plain:
    """An engine that takes no options."""

    Options = EngineOptions

    def __init__(self, target, options, **context):
        self.target, self.options, self.context = target, options, context


class Tuned(Plain):
    class Options(EngineOptions):
        depth: int = 2
        colour_name: str = Field(default="red", json_schema_extra={"flag": "--colour"})


class Other(Plain):
    class Options(EngineOptions):
        depth: int = 3


ENGINES = Registry(
    "test engine", {"plain": f"{__name__}:Plain", "tuned": f"{__name__}:Tuned", "other": f"{__name__}:Other"},
    noun="engine",
)


def test_build_checks_options_against_the_engines_own_model_then_builds_it():
    built = ENGINES.build("tuned", "target", {"depth": "5"}, store="the store")
    assert (built.target, built.options.depth, built.options.colour_name, built.context) == (
        "target", 5, "red", {"store": "the store"}
    )
    assert built.options.model_fields_set == {"depth"}  # what was given, apart from the defaults
    assert ENGINES.option_names() == {"depth", "colour_name"}


def test_an_option_the_engine_does_not_take_names_the_engine_and_who_takes_it():
    with pytest.raises(UsageError, match="^--depth is an option of the tuned and other engines; the plain engine does"):
        ENGINES.build("plain", "t", {"depth": 1})
    with pytest.raises(UsageError, match="^--colour is an option of the tuned engine; the other engine does not take it$"):
        ENGINES.build("other", "t", {"colour_name": "blue"})
    with pytest.raises(UsageError, match=r"^the tuned engine does not take -x \(it takes --depth, --colour\)$"):
        ENGINES.build("tuned", "t", {"deep": 1}, flags={"deep": "-x"})
    with pytest.raises(UsageError, match=r"^--deep: Input should be a valid integer.* \(the tuned engine\)$"):
        ENGINES.build("tuned", "t", {"depth": "very"}, flags={"depth": "--deep"})


def test_checking_options_imports_no_heavy_library():
    """Every runtime's and judge's options are checked, and a refused one named, from the engines'
    modules alone: torch, transformers, vllm, openai and sentence-transformers stay unloaded."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from saftool.errors import UsageError\n"
        "from saftool.judge import JUDGES\n"
        "from saftool.runtimes import RUNTIMES\n"
        "RUNTIMES.option_names(), JUDGES.option_names(), JUDGES.options_model('cascade:learned,hf:x')\n"
        "for registry, name, option in ((RUNTIMES, 'openai', 'decoder'), (JUDGES, 'keyword', 'device')):\n"
        "    try:\n"
        "        registry.options(name, {option: 1})\n"
        "    except UsageError:\n"
        "        pass\n"
        "heavy = {'torch', 'transformers', 'vllm', 'openai', 'sentence_transformers'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
