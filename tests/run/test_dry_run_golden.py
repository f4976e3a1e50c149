"""`saftool run --dry-run` prints the same commands as the golden files in tests/run/golden/.

The plan's argv is what SLURM and Ray run, so a refactor of the configs or the plan must not change
it. The golden files were written by the CLI itself, with the store's path replaced by `$STORE`.
When the plan's output changes on purpose, regenerate them and review the diff in the commit:

    SAFTOOL_UPDATE_GOLDEN=1 python -m pytest -q tests/run/test_dry_run_golden.py
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from saftool.cli import app
from tests.conftest import ROOT

GOLDEN = Path(__file__).parent / "golden"

# golden name -> `saftool run` arguments before --dry-run; every example config dry-runs offline
CASES = {
    "default": [],
    "smoke": ["--preset", "smoke"],
    **{f"example-{path.stem}": [str(path)] for path in sorted((ROOT / "examples").glob("*.toml"))},
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_dry_run_matches_golden(name, runner, isolated_store):
    result = runner.invoke(app, ["run", *CASES[name], "--dry-run"])
    assert result.exit_code == 0, result.output
    got = result.stdout.replace(str(isolated_store), "$STORE").splitlines()
    golden = GOLDEN / f"{name}.txt"
    if os.environ.get("SAFTOOL_UPDATE_GOLDEN") == "1":
        golden.write_text("\n".join(got) + "\n")
    assert golden.exists(), f"{golden} missing; write it with SAFTOOL_UPDATE_GOLDEN=1"
    want = golden.read_text().splitlines()
    diff = "\n".join(difflib.unified_diff(want, got, str(golden), "saftool run --dry-run", lineterm=""))
    assert got == want, f"the plan changed (rerun with SAFTOOL_UPDATE_GOLDEN=1 if on purpose):\n{diff}"


def test_every_example_config_has_a_golden_file():
    # a new example config gets its golden file, and a removed one takes its file with it
    assert sorted(p.stem for p in GOLDEN.glob("*.txt")) == sorted(CASES)
