"""Inference backends for `infer`, behind one small batched interface and looked up by name.

A runtime is made with `Runtime(model, options)` and answers prompts with `generate(prompts,
generation)`, yielding `(index, Completion)` pairs in any order; `infer` writes them in batches.
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
class RuntimeOptions:
    batch_size: int | None = None  # None: the backend's default
    device: str = "auto"  # auto, cpu or cuda (local backends)
    cache_dir: str | None = None  # API response cache (openai)


RUNTIMES = Registry(
    "inference backend",
    {
        "hf": "saftool.runtimes.hf:HFRuntime",
        "vllm": "saftool.runtimes.vllm:VLLMRuntime",
        "openai": "saftool.runtimes.openai:OpenAIRuntime",
    },
    requires={"vllm": ("vllm", "vllm")},
)
