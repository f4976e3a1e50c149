"""Inference backends for `infer`, behind one small batched interface and looked up by name.

A runtime is made with `Runtime(model, options)` and answers prompts with `generate(prompts,
generation)`, yielding `(index, Completion)` pairs in any order; `infer` writes them in batches.
Its `loads_model_dir` says whether `model` is a local model directory (hf, vllm: `infer` resolves
store names and Hub ids to one with `saftool.hub.resolve_model`) or a served model's id, passed as
given (openai).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from saftool.errors import SaftoolError
from saftool.hub import ModelSource, resolve_model
from saftool.registry import Registry


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Prompt:
    """One item to answer; each runtime renders it in the run's template (`GenerationConfig.template`)."""

    instruction: str
    input: str = ""


@dataclass(frozen=True)
class RuntimeOptions:
    batch_size: int | None = None  # None: the backend's default
    device: str = "auto"  # auto, cpu or cuda (local backends)
    cache_dir: str | None = None  # API response cache (openai)
    max_memory: float = 0.8  # share of the free device memory the KV cache may take (hf, vllm)
    decoder: str = "auto"  # hf greedy path: auto, slots, paged (transformers' generate_batch) or loop
    tensor_parallel: int = 1  # GPUs one vllm model is split over
    endpoint: str = "chat"  # openai: chat (messages; the server's chat template) or completions (raw text)
    load_in_4bit: bool = False  # hf: the base in 4-bit NF4 (a QLoRA adapter on the base it trained on), unmerged
    dtype: str = "auto"  # hf: auto (runtimes.local.local_dtype), float32 or bfloat16


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


RUNTIMES = Registry(
    "inference backend",
    {
        "hf": "saftool.runtimes.hf:HFRuntime",
        "vllm": "saftool.runtimes.vllm:VLLMRuntime",
        "openai": "saftool.runtimes.openai:OpenAIRuntime",
    },
    requires={"vllm": ("vllm", "vllm")},
)
