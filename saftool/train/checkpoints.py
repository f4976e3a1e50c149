"""Checkpoint layouts: the run's resumable checkpoint folder, whether a checkpoint (one process,
DDP, FSDP or DeepSpeed) or a final save was written completely, and the final save itself."""

from __future__ import annotations

import shutil
from pathlib import Path

from saftool import console
from saftool.errors import UsageError
from saftool.io import write_json
from saftool.store import Store, check_name

CKPT_STATE = "saftool_ckpt.json"


def checkpoint_dir(store: Store, name: str) -> Path:
    """Where a run keeps its resumable checkpoints (and, for tool-built models, the base it built)."""
    return store.models / f".{check_name(name, 'model name')}.ckpt"


def prepare_checkpoint_dir(ckpt: Path, identity: dict[str, str], resume: bool, main: bool = True) -> Path | None:
    """Start a fresh checkpoint folder, or check an old one belongs to this run; the checkpoint to resume.

    Only the main process of a multi-process launch starts the folder afresh; the others run after
    it and must not clear what it made.
    """
    state_file = ckpt / CKPT_STATE
    if resume and state_file.is_file():
        import json

        old = json.loads(state_file.read_text(encoding="utf-8"))
        if old != identity:
            raise UsageError(
                f"the checkpoint in {ckpt} was made with another config or mix; rerun without --resume to start over"
            )
        checkpoints = sorted(ckpt.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
        # a kill can land while the newest checkpoint is being written: resume from the newest
        # complete one and drop the torn ones, which the trainer would refuse to load
        while checkpoints and not checkpoint_complete(checkpoints[-1]):
            console.warn(f"{checkpoints[-1].name} was not completely written (killed while saving?); removing it")
            shutil.rmtree(checkpoints.pop())
        if checkpoints:
            console.info(f"resuming from {checkpoints[-1].name}")
            return checkpoints[-1]
        return None
    if not main:
        return None
    if resume:
        console.info("no checkpoint to resume; starting from the beginning")
    if ckpt.exists():
        shutil.rmtree(ckpt)
    ckpt.mkdir(parents=True)
    write_json(identity, state_file)
    return None


_WEIGHT_FILES = ("model.safetensors", "adapter_model.safetensors")


def checkpoint_complete(checkpoint: Path) -> bool:
    """A trainer state that parses (the Trainer writes it last) and the model state in a layout the
    Trainer resumes from, completely written:

    * safetensors weights as long as their header says (one process, DDP), or a sharded index;
    * FSDP's sharded state (`pytorch_model_fsdp_0/`, torch.distributed.checkpoint), whose
      `.metadata` is written only once every process wrote its shard, or its full-state-dict file;
    * DeepSpeed's `global_stepN/` folder, which its `latest` file names only once the save finished.
    """
    import json

    try:
        json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if (checkpoint / "pytorch_model_fsdp_0").is_dir():
        return (checkpoint / "pytorch_model_fsdp_0" / ".metadata").is_file()
    if (checkpoint / "pytorch_model_fsdp.bin").is_file():
        return True
    if (checkpoint / "latest").is_file():
        tag = (checkpoint / "latest").read_text(encoding="utf-8").strip()
        return bool(tag) and any((checkpoint / tag).glob("*model_states.pt"))
    return weights_complete(checkpoint)


def weights_complete(folder: Path) -> bool:
    """Loadable weights in `folder`: a safetensors file (model or adapter) as long as its header
    says, or a sharded index whose every shard is there."""
    import json
    import struct

    try:
        index = folder / "model.safetensors.index.json"
        if index.is_file():
            shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
            return all(_safetensors_complete(folder / shard) for shard in shards)
        weights = next((folder / f for f in _WEIGHT_FILES if (folder / f).is_file()), None)
        return weights is not None and _safetensors_complete(weights)
    except (OSError, ValueError, KeyError, struct.error):
        return False


def _safetensors_complete(path: Path) -> bool:
    import json
    import struct

    with open(path, "rb") as fh:
        header_len = struct.unpack("<Q", fh.read(8))[0]
        header = json.loads(fh.read(header_len))
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    return path.stat().st_size == 8 + header_len + end


def save_final_model(trainer, folder: Path) -> None:
    """Write the trained weights (or adapter) to `folder` as safetensors; every process calls it.

    Under FSDP the Trainer's own `save_model` writes weights only with a full state dict type, and
    accelerate defaults FSDP2 to a sharded one (which its resumable checkpoints should keep), so it
    would leave a folder with a config and no weights. Here the full state dict is gathered for
    the final save (a collective; the main process gets it on the CPU) and the main process writes
    it. DDP and DeepSpeed go through `save_model`, which under ZeRO-3 gathers 16-bit weights when
    the DeepSpeed config allows it.
    """
    if not trainer.is_fsdp_enabled:
        trainer.save_model(str(folder))
        return
    accelerator = trainer.accelerator
    state = accelerator.get_state_dict(trainer.model)
    if trainer.is_world_process_zero():
        accelerator.unwrap_model(trainer.model).save_pretrained(str(folder), state_dict=state, safe_serialization=True)
    accelerator.wait_for_everyone()
