"""Loading what `train` wrote for inference and export: full models, and LoRA adapters on their base.

* `open_model_dir` checks a model directory before any weights load and finds what it names: a
  full model's weights, or the base a PEFT adapter names and the tokenizer to use. The local
  inference backends (hf, vllm), the judges and export open model directories through it.

* A LoRA adapter is merged into its base in float32 and the merged weights are cast afterwards.
  Merging into a bf16 base instead rounds W + (alpha/r)·BA back to W wherever the update is below
  half a bf16 step of W (bf16 keeps 8 significant bits: about 0.4% of |W|), so a short LoRA run's
  update can vanish entirely (tests/test_adapters.py shows it).
* `load_in_4bit` evaluates a QLoRA adapter on the 4-bit NF4 base it was trained on, unmerged:
  merging into 4-bit weights would requantise them and lose the update the same way.
* `export_merged` writes a merged model as safetensors that `from_pretrained` and vLLM load.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saftool.errors import SaftoolError, UsageError
from saftool.hub import ModelSource, resolve_model

DTYPES = ("auto", "bfloat16", "float16", "float32")


@dataclass(frozen=True)
class ModelDir:
    """A local model directory as the local backends (hf, vllm) load it."""

    path: Path
    base: ModelSource | None  # the base model a PEFT adapter directory names, resolved; None for a full model
    tokenizer: str  # the directory's own tokenizer, else (an adapter saved without one) its base's


def open_model_dir(model: str) -> ModelDir:
    """Check `model` holds safetensors weights and a config (or a PEFT adapter), and find what it names.

    An adapter's base (a directory or a Hub id) resolves through `saftool.hub`, so a base on the Hub
    loads from the Hugging Face cache under the same offline rules as a model given by Hub id.
    """
    path = Path(model)
    base = None
    if (path / "adapter_config.json").is_file():
        if not (path / "adapter_model.safetensors").is_file():
            raise SaftoolError(f"adapter directory {path} holds no adapter_model.safetensors")
        named = json.loads((path / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path")
        if not isinstance(named, str) or not named:
            raise SaftoolError(f"{path / 'adapter_config.json'}: base_model_name_or_path names no base model")
        base = resolve_model(named)
    elif not (path / "config.json").is_file():
        raise SaftoolError(f"model directory {path} holds no config.json")
    elif not any(path.glob("*.safetensors")):
        raise SaftoolError(f"model directory {path} holds no .safetensors weights (saftool loads only safetensors)")
    own_tokenizer = base is None or (path / "tokenizer_config.json").is_file()
    return ModelDir(path, base, str(path) if own_tokenizer else str(base.path))


def nf4_config(bf16: bool, quant_storage=None):
    """QLoRA's 4-bit base: NF4 with double quantisation, computing in bf16 where the device has it.

    `quant_storage` (bitsandbytes' bnb_4bit_quant_storage) packs the 4-bit weights in that dtype,
    which FSDP and ZeRO-3 need to shard them alongside the other parameters.
    """
    import torch
    from transformers import BitsAndBytesConfig

    extra = {"bnb_4bit_quant_storage": quant_storage} if quant_storage is not None else {}
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16 if bf16 else torch.float32,
        **extra,
    )


def load_causal_lm(local: ModelDir, dtype, device, *, load_in_4bit: bool = False):
    """The model of a model directory (`open_model_dir`) in `dtype` on `device`, in eval mode.

    A full model loads as is. An adapter is merged into its base in float32, then cast to `dtype`;
    with `load_in_4bit` the base loads in 4-bit NF4 (as QLoRA trained on it) and the adapter stays
    unmerged on top.
    """
    import torch
    from transformers import AutoModelForCausalLM

    load: dict[str, Any] = {"use_safetensors": True, "trust_remote_code": False}
    if load_in_4bit:
        from peft import PeftModel

        bf16 = dtype == torch.bfloat16
        base_path = str(local.base.path) if local.base is not None else str(local.path)
        base = AutoModelForCausalLM.from_pretrained(
            base_path,
            quantization_config=nf4_config(bf16),
            dtype=dtype,
            device_map={"": str(device)},  # 4-bit weights are placed while loading; they cannot move after
            **load,
        )
        model = base if local.base is None else PeftModel.from_pretrained(base, str(local.path))
        return model.eval()
    if local.base is None:
        model = AutoModelForCausalLM.from_pretrained(str(local.path), dtype=dtype, **load)
    else:
        model = merge_adapter(local, **load).to(dtype)
    return model.to(device).eval()


def merge_adapter(local: ModelDir, **load: Any):
    """The adapter of `local` merged into its base, all in float32 (see the module docstring)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    load = {"use_safetensors": True, "trust_remote_code": False, **load}
    try:
        base = AutoModelForCausalLM.from_pretrained(str(local.base.path), dtype=torch.float32, **load)
    except OSError as exc:
        raise SaftoolError(
            f"could not load the base model {str(local.base.path)!r} of adapter {local.path}: {exc}"
        ) from None
    return PeftModel.from_pretrained(base, str(local.path)).merge_and_unload()


def export_merged(model_dir: str | Path, out: str | Path, dtype: str = "auto") -> Path:
    """Write the model of `model_dir` to `out` as one `from_pretrained`-loadable safetensors model
    with its tokenizer: an adapter merged into its base (in float32, then cast to `dtype`; auto: the
    base's own dtype), a full model as it is. `out` appears in one rename, complete."""
    import torch
    from transformers import AutoConfig, AutoTokenizer

    if dtype not in DTYPES:
        raise UsageError(f"unknown --dtype {dtype!r}; choose one of: {', '.join(DTYPES)}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} already exists and is not empty; choose a new directory")
    local = open_model_dir(str(model_dir))
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if local.base is None:
            for item in local.path.iterdir():
                if item.is_file() and item.name != "train_run.json":
                    shutil.copy2(item, staging / item.name)
        else:
            if dtype == "auto":
                base_config = AutoConfig.from_pretrained(str(local.base.path), trust_remote_code=False)
                base_dtype = getattr(base_config, "dtype", None)
                target = base_dtype if isinstance(base_dtype, torch.dtype) else torch.float32
            else:
                target = getattr(torch, dtype)
            merged = merge_adapter(local).to(target)
            merged.save_pretrained(str(staging), safe_serialization=True)
            AutoTokenizer.from_pretrained(local.tokenizer, trust_remote_code=False).save_pretrained(
                str(staging)
            )
        if out.exists():
            out.rmdir()
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out
