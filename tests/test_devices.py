from __future__ import annotations

import os
import subprocess
import sys


def test_the_saftool_command_makes_openmp_threads_sleep_unless_the_user_chose():
    """The `saftool` command sets OMP_WAIT_POLICY=PASSIVE before any command runs (and so before any
    loads torch, whose OpenMP runtime reads it once, at load); a user's own setting stays."""
    probe = (
        "import os, sys; import saftool.cli as cli\n"
        "@cli.app.command('env-probe')\n"
        "def probe():\n"
        "    print(os.environ.get('OMP_WAIT_POLICY'))\n"
        "sys.argv = ['saftool', 'env-probe']; cli.main()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["PASSIVE"]
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["ACTIVE"]
