"""Checks that fail a bad run before any weights load and before a checkpoint folder exists.

The method against the base (LoRA needs a real base, QLoRA bitsandbytes), the sharding against the
device, and the base model itself: where it is, whether its tokenizer has the chat template asked
for, whether it has the layers LoRA is asked to target.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from saftool.errors import MissingDependencyError, SaftoolError, UsageError
from saftool.presets import TrainConfig
from saftool.store import Store
from saftool.train.loading import load_error, load_tokenizer


def check_method(config: TrainConfig) -> None:
    if config.base_model is None and config.method != "full":
        raise UsageError(
            f"--method {config.method} needs --base-model: the tiny presets build a fresh model and train it in full"
        )
    if config.base_model is None and config.template == "chat":
        raise UsageError("--template chat needs --base-model: the tool-built tiny model has no chat template")
    if config.method == "qlora" and importlib.util.find_spec("bitsandbytes") is None:
        raise MissingDependencyError("bitsandbytes", "QLoRA (--method qlora)")


def sharding_kind() -> str | None:
    """"fsdp" or "deepspeed" when `accelerate launch` shards the model (its config reaches every
    process in these variables, which accelerate itself reads), else None (one process or DDP)."""
    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true":
        return "fsdp"
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":
        return "deepspeed"
    return None


def check_sharding(config: TrainConfig, sharding: str | None, use_cuda: bool) -> None:
    if config.method == "qlora" and sharding is not None and not use_cuda:
        raise UsageError(
            f"--method qlora under {'FSDP' if sharding == 'fsdp' else 'DeepSpeed'} needs CUDA GPUs: bitsandbytes "
            "shards 4-bit weights only there; on the CPU use one process or plain DDP"
        )


def check_base_model(config: TrainConfig, base_path: str):
    """Check the base fits the config without loading its weights; its tokenizer.

    The chat template comes from the tokenizer; the LoRA targets are checked against the layers of
    the architecture, built on the meta device (no memory, no weights read).
    """
    tokenizer = load_tokenizer(config, base_path)
    if config.template == "chat" and not getattr(tokenizer, "chat_template", None):
        raise UsageError(
            f"--template chat: the tokenizer of {config.base_model!r} has no chat template "
            "(a base model, not an instruct one?); use --template alpaca"
        )
    if config.method != "full" and config.lora_target_modules != ("all-linear",):
        names = targetable_modules(config, base_path)
        missing = [t for t in config.lora_target_modules if not any(n == t or n.endswith(f".{t}") for n in names)]
        if missing:
            leaves = sorted({n.rsplit(".", 1)[-1] for n in names})
            raise UsageError(
                f"--target-modules {','.join(missing)}: no such layer in {config.base_model!r}; "
                f"LoRA can target: {', '.join(leaves)}"
            )
    if config.method != "full" and config.lora_layers:
        num_layers = base_config(config, base_path).num_hidden_layers
        if config.lora_layers > num_layers:
            raise UsageError(f"--lora-layers {config.lora_layers}: {config.base_model!r} has {num_layers} decoder layers")
    return tokenizer


def base_config(config: TrainConfig, base_path: str):
    """The base's transformers config (config.json only)."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(base_path, trust_remote_code=False)
    except OSError as exc:
        raise load_error(config, base_path, exc) from None


def targetable_modules(config: TrainConfig, base_path: str) -> list[str]:
    """Dotted names of the base's layers a LoRA adapter can wrap (linear, embedding, convolution)."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.pytorch_utils import Conv1D

    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(base_config(config, base_path), trust_remote_code=False)
    kinds = (torch.nn.Linear, torch.nn.Embedding, torch.nn.Conv1d, torch.nn.Conv2d, Conv1D)
    return [name for name, module in skeleton.named_modules() if isinstance(module, kinds)]


def check_base(config: TrainConfig, store: Store) -> str | None:
    """The local base directory (absolute, so an adapter names it from anywhere), or None to build one.

    A bare name is a store model when the store has it or can pull it (`saftool.pretrained`), else a
    Hub id without an organisation (`gpt2`).
    """
    base = config.base_model
    if base is None:
        return None
    path = Path(base).expanduser()
    if "/" not in base and not path.exists():
        from saftool.hub import store_model
        from saftool.pretrained import PRETRAINED

        if base in PRETRAINED or (store.models / base).is_dir():
            path = store_model(base, store)
    if path.exists():
        if not path.is_dir():
            raise SaftoolError(f"base model {base!r} is a file; expected a model directory")
        if not (path / "config.json").is_file():
            raise SaftoolError(f"base model directory {base!r} holds no config.json")
        if not any(path.glob("*.safetensors")):
            raise SaftoolError(f"base model directory {base!r} holds no .safetensors weights (saftool loads only safetensors)")
        return str(path.resolve())
    if base.startswith((".", "/", "~")) or base.count("/") > 1:
        raise SaftoolError(f"base model path {base!r} does not exist")
    return base  # a hub id ("org/name"): from_pretrained resolves it
