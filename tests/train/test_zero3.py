"""`saftool train` under the shipped DeepSpeed ZeRO-3 config builds its model sharded (zero.Init).

DeepSpeed is not installed here (it is heavy and its engine needs GPUs), so a stand-in package takes
its place at the import boundary only: a `deepspeed` folder and its distribution metadata on
PYTHONPATH, which transformers' own `dep_version_check` and `import deepspeed` find. Everything up
to the model's construction is the real code: accelerate's launcher turns the YAML into the
environment, SFTConfig's `__post_init__` registers the DeepSpeed config, and transformers'
`from_pretrained` decides whether to enter `deepspeed.zero.Init`. The stand-in's `zero.Init` records
what transformers saw at that moment and stops the run there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from saftool.store import Store
from tests.modelfix import write_mix

ROOT = Path(__file__).resolve().parents[2]
STOPPED = "deepspeed stand-in: zero.Init entered"

STANDIN = f'''
"""Stand-in for DeepSpeed (tests/train/test_zero3.py): zero.Init reports, then stops the run."""
import json
import os

__version__ = "0.18.0"


class _Zero:
    @staticmethod
    def Init(config_dict_or_path=None, **kwargs):
        from transformers.integrations import is_deepspeed_zero3_enabled

        report = {{"zero3_enabled": is_deepspeed_zero3_enabled(), "config": config_dict_or_path}}
        with open(os.environ["DEEPSPEED_STANDIN_REPORT"], "w") as fh:
            json.dump(report, fh, default=str)
        raise RuntimeError({STOPPED!r})


zero = _Zero()


class DeepSpeedEngine:  # accelerate's unwrapping checks isinstance(model, DeepSpeedEngine)
    pass
'''


def deepspeed_launch_env(config_file: Path) -> dict[str, str]:
    """The variables `accelerate launch --config_file CONFIG` gives each process, from accelerate's
    own launcher code (one process, mixed precision off: no bf16 autocast on this CPU)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env

    argv = ["--config_file", str(config_file), "--num_processes", "1", "-m", "saftool"]
    args, defaults, _ = _validate_launch_command(launch_command_parser().parse_args(argv))
    args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)  # as launch_command sets it
    _, env = prepare_deepspeed_cmd_env(args)
    return {**{k: v for k, v in env.items() if k.startswith("ACCELERATE_")}, "ACCELERATE_MIXED_PRECISION": "no"}


@pytest.mark.slow
def test_zero3_config_is_registered_before_the_model_is_built(isolated_store, tmp_path):
    site = tmp_path / "site"
    (site / "deepspeed").mkdir(parents=True)
    (site / "deepspeed" / "__init__.py").write_text(STANDIN)
    (site / "deepspeed-0.18.0.dist-info").mkdir()
    (site / "deepspeed-0.18.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: deepspeed\nVersion: 0.18.0\n")
    report = tmp_path / "report.json"

    write_mix(Store(isolated_store), n_benign=20, n_harm=4)
    zero3 = deepspeed_launch_env(ROOT / "examples" / "accelerate" / "deepspeed-zero3.yaml")
    assert zero3["ACCELERATE_USE_DEEPSPEED"] == "true" and zero3["ACCELERATE_DEEPSPEED_ZERO_STAGE"] == "3"
    env = {
        **os.environ,
        **zero3,
        "PYTHONPATH": os.pathsep.join([str(site), str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "DEEPSPEED_STANDIN_REPORT": str(report),
        "SAFTOOL_STORE": str(isolated_store),
        "SAFTOOL_NO_PROGRESS": "1",
    }
    cmd = [sys.executable, "-m", "saftool", "train", "--mix", "m", "--preset", "smoke"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)

    assert report.is_file(), f"the model was built without deepspeed.zero.Init:\n{done.stderr[-3000:]}"
    seen = json.loads(report.read_text())
    assert seen["zero3_enabled"] is True
    assert seen["config"]["zero_optimization"]["stage"] == 3
    assert STOPPED in done.stderr and done.returncode != 0  # the stand-in stopped it; nothing registered
    assert not Store(isolated_store).model_dir("m").exists()
