from __future__ import annotations

import subprocess
import sys

from saftool.cli import app


def _walk(command, path=()):
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from _walk(sub, (*path, name))


def test_every_command_has_help(runner):
    import typer.main

    root = typer.main.get_command(app)
    paths = list(_walk(root))
    assert len(paths) > 1
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys; from saftool.cli import app; "
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers', 'openai', 'duckdb', 'trl') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_version(runner):
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("saftool ")
