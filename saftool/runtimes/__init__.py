"""Inference backends for `infer`, behind one small batched interface and looked up by name.

A runtime is built with `load_runtime(backend, model, store=..., **options)`: the options are
checked against the backend's own `Options` model (an option another backend takes, or a
misspelt one, is a UsageError naming both), then `Runtime(model, options, store=store)` resolves
the model and checks what it can before any weights load. It answers prompts with
`generate(prompts, generation)`, yielding `(index, Completion)` pairs in any order; `infer` writes
them in batches and never asks which backend it holds (see `Runtime`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import Field

from saftool.hub import ModelSource
from saftool.records import GenerationConfig
from saftool.registry import EngineOptions, Registry


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


class BatchOptions(EngineOptions):
    """What every backend takes."""

    batch_size: int | None = Field(
        default=None, description="Prompts worked on at once, also answers per write [default: the backend's]."
    )


class LocalOptions(BatchOptions):
    """What the backends that load the model on this machine take (hf, vllm)."""

    device: str = Field(default="auto", description="auto, cpu or cuda.")
    max_memory: float = Field(
        default=0.8, description="Share of the free device memory the KV cache may take, in (0, 1]."
    )


class Runtime(Protocol):
    """What `infer` uses of a runtime; every backend in `RUNTIMES` has it."""

    name: str  # its name in RUNTIMES, recorded in each Response's `backend`
    source: ModelSource  # the model it answers with, as responses and store paths name it
    loads_model_dir: bool  # a local model directory (whose train_run.json says how it was tuned)
    default_template: str  # the template a run that names none asks in
    batch_size: int  # answers per write, so the most a kill loses
    # how the weights are held when that changes the answers ('nf4', 'bf16'); None as saved
    weights: str | None

    def prompt_template(self, generation: GenerationConfig, model: str) -> str | None: ...

    def generate(
        self, prompts: Sequence[Prompt], generation: GenerationConfig
    ) -> Iterator[tuple[int, Completion]]: ...


RUNTIMES = Registry(
    "inference backend",
    {
        "hf": "saftool.runtimes.hf:HFRuntime",
        "vllm": "saftool.runtimes.vllm:VLLMRuntime",
        "openai": "saftool.runtimes.openai:OpenAIRuntime",
    },
    requires={"vllm": ("vllm", "vllm")},
    noun="backend",
)
DEFAULT_RUNTIME = "hf"  # what `infer` answers with unless told otherwise


def load_runtime(
    backend: str, model: str, *, store=None, flags: Mapping[str, str] | None = None, **options: Any
) -> Runtime:
    """The `backend` runtime answering with `model`, its `options` checked against the backend's.

    `model` is a store model name, a local Hugging Face directory or a Hub id `ORG/NAME[@REVISION]`
    (hf, vllm; see `saftool.hub.resolve_model`), or the served model id (openai). `flags` names the
    options in errors as the caller's command line spells them.
    """
    from saftool.store import Store

    return RUNTIMES.build(backend, model, options, flags=flags, store=store or Store())
