#!/usr/bin/env bash
# One command that sets saftool up on a fresh Linux machine: a virtualenv in .venv with the package,
# its dependencies (torch pinned to the 2.13.0 build) and the test tools.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first and pinned: on these machines 2.13.0 is a CPU build from a local file; a looser range
# would pull a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[dev]"
echo "saftool installed: activate with '. .venv/bin/activate', then try 'saftool --help'" >&2
