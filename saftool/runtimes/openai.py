"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM's or llama.cpp's server...), to evaluate a served model.

Each prompt, already in the run's template, is sent as one user message through the shared
`ChatClient` (cache, concurrency, retries); greedy decoding maps to temperature 0.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from saftool.openai_chat import ChatClient, ChatRequest
from saftool.records import GenerationConfig
from saftool.runtimes import Completion, RuntimeOptions


class OpenAIRuntime:
    default_batch_size = 16
    loads_model_dir = False

    def __init__(self, model: str, options: RuntimeOptions):
        self.batch_size = options.batch_size or self.default_batch_size
        self.client = ChatClient(
            model, cache_dir=options.cache_dir, namespace="infer", concurrency=self.batch_size
        )

    def generate(self, prompts: Sequence[str], generation: GenerationConfig) -> Iterator[tuple[int, Completion]]:
        temperature = generation.temperature if generation.do_sample else 0.0
        requests = [
            ChatRequest.of(("user", prompt), temperature=temperature, max_tokens=generation.max_new_tokens)
            for prompt in prompts
        ]
        for i, result in self.client.complete_many(requests):
            yield i, Completion(result.text.strip(), result.prompt_tokens, result.completion_tokens)
