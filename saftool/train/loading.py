"""Loading the base model and its tokenizer as the method wants, with one error line naming the base."""

from __future__ import annotations

from typing import Any

from saftool.errors import SaftoolError
from saftool.presets import TrainConfig


def load_tokenizer(config: TrainConfig, base_path: str):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(base_path, trust_remote_code=False)
    except OSError as exc:
        raise load_error(config, base_path, exc) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(config: TrainConfig, base_path: str, use_cuda: bool, bf16: bool, sharding: str | None = None):
    import torch
    from transformers import AutoModelForCausalLM

    from saftool.adapters import nf4_config

    kwargs: dict[str, Any] = {"use_safetensors": True, "trust_remote_code": False}
    if config.method == "qlora":
        from accelerate import PartialState

        # FSDP and ZeRO-3 shard parameters of one dtype: the 4-bit weights are stored packed in the
        # compute dtype (bitsandbytes' bnb_4bit_quant_storage) and placed by the sharding, not by a
        # per-rank device_map. Plain DDP keeps a whole copy on each process's own device, as 4-bit
        # weights cannot move after loading.
        compute = torch.bfloat16 if bf16 else torch.float32
        kwargs["quantization_config"] = nf4_config(bf16, quant_storage=compute if sharding else None)
        if sharding is None:
            kwargs["device_map"] = {"": PartialState().local_process_index} if use_cuda else {"": "cpu"}
        kwargs["dtype"] = compute
    elif config.method == "lora" and bf16:
        kwargs["dtype"] = torch.bfloat16  # frozen base in bf16; the adapter trains under autocast
    else:
        kwargs["dtype"] = torch.float32  # full fine-tuning keeps fp32 master weights (bf16 via autocast)
    try:
        return AutoModelForCausalLM.from_pretrained(base_path, **kwargs)
    except OSError as exc:
        raise load_error(config, base_path, exc) from None


def load_error(config: TrainConfig, base_path: str, exc: OSError) -> SaftoolError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return SaftoolError(f"could not load base model {config.base_model or base_path!r}: {first}")
