"""Inference backends for `infer`, behind one small batched interface and looked up by name.

A runtime is made with `Runtime(model, options)` and answers prompts with `generate(prompts,
generation)`, yielding `(index, Completion)` pairs in any order; `infer` writes them in batches.
Its `loads_model_dir` says whether `model` is a local model directory (hf, vllm: `infer` resolves
store names and Hub ids to one with `saftool.hub.resolve_model`) or a served model's id, passed as
given (openai).
"""

from __future__ import annotations

from dataclasses import dataclass

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


RUNTIMES = Registry(
    "inference backend",
    {
        "hf": "saftool.runtimes.hf:HFRuntime",
        "vllm": "saftool.runtimes.vllm:VLLMRuntime",
        "openai": "saftool.runtimes.openai:OpenAIRuntime",
    },
    requires={"vllm": ("vllm", "vllm")},
)
