"""Run the saftool CLI under accelerate's FSDP on the CPU: `torchrun ... -m tests.fsdp_cpu train ...`.

accelerate enables FSDP only on accelerator devices: under torchrun on a CPU (distributed type
MULTI_CPU) `AcceleratorState.__init__` ignores ACCELERATE_USE_FSDP and the plugin it built from the
FSDP_* variables, and the run silently becomes DDP (accelerate 1.15, state.py: FSDP is chosen only
inside the MULTI_GPU/MLU/SDAA/MUSA/NPU/XPU/HPU/NEURON branch). torch's FSDP2 (`fully_shard`) itself
shards CPU tensors over gloo, so this launcher lifts that one gate: once accelerate has built its
state, the FSDP plugin it made from the environment becomes the active one. Everything else is the
real code: the Trainer, accelerate's FSDP2 preparation, sharded checkpoints written with
torch.distributed.checkpoint, resuming from them, and saftool's gathered final save.
"""

from __future__ import annotations

import sys


def launch_env(config_file: str, processes: int) -> dict[str, str]:
    """The variables `accelerate launch --config_file CONFIG` gives each process, from accelerate's
    own launcher code, with mixed precision off (no bf16 autocast on this CPU)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env

    argv = ["--config_file", config_file, "--num_processes", str(processes), "-m", "saftool"]
    args, _, _ = _validate_launch_command(launch_command_parser().parse_args(argv))
    env = {k: v for k, v in prepare_multi_gpu_env(args).items() if k.startswith(("ACCELERATE_", "FSDP_"))}
    return {**env, "ACCELERATE_MIXED_PRECISION": "no"}


def _lift_the_cpu_gate() -> None:
    from accelerate import state
    from accelerate.utils import DistributedType

    original = state.AcceleratorState.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        plugin = kwargs.get("fsdp_plugin")
        if plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
            self.distributed_type = DistributedType.FSDP
            self.fsdp_plugin = plugin
            # later AcceleratorState() calls copy the process state's type back over their own
            state.PartialState._shared_state["distributed_type"] = DistributedType.FSDP

    state.AcceleratorState.__init__ = init


if __name__ == "__main__":
    _lift_the_cpu_gate()
    from saftool.cli import main

    sys.argv = ["saftool", *sys.argv[1:]]
    main()
