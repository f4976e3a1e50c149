"""Any OpenAI-compatible endpoint (OpenAI, vLLM's or llama.cpp's server...), to evaluate a served model.

Two endpoints, `OpenAIRuntime.Options.endpoint`:

* `chat` (the default): each prompt goes out as chat messages, the bare instruction (with its input
  below it) as the user turn after an optional system message, and the server renders them in the
  model's own chat template; the run's template is `chat`.
* `completions`: for base models served without a chat template (vLLM serving a tuned Llama-2), the
  prompt text in the run's text template (`alpaca`, the study's, or `none`) goes out as it is.

Requests go through the shared `ChatClient` (cache, concurrency, retries). Greedy decoding maps to
temperature 0; sampling sends temperature, top_p and the seed, all part of the cache key. The server
stops at the model's own stop tokens (vLLM reads the model's generation_config.json).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from pydantic import Field

from saftool.errors import UsageError
from saftool.hub import ModelSource
from saftool.openai_chat import ChatClient, ChatRequest
from saftool.records import GenerationConfig
from saftool.runtimes import BatchOptions, Completion, Prompt
from saftool.template import chat_messages, render_text, template_text

ENDPOINTS = ("chat", "completions")


class OpenAIRuntime:
    name = "openai"
    default_batch_size = 16
    loads_model_dir = False
    weights = None  # the server's business

    class Options(BatchOptions):
        endpoint: str = Field(default="chat", description="chat (messages) or completions (the raw prompt text).")

    def __init__(self, model: str, options: Options | None = None, *, store=None):
        """`model`: the served model's id, passed as given; responses are cached in `store`'s cache."""
        options = options or self.Options()
        if options.endpoint not in ENDPOINTS:
            raise UsageError(f"unknown endpoint {options.endpoint!r}; choose one of: {', '.join(ENDPOINTS)}")
        self.endpoint = options.endpoint
        self.default_template = "chat" if self.endpoint == "chat" else "alpaca"
        self.batch_size = options.batch_size or self.default_batch_size
        self.source = ModelSource(Path(model), model)
        self.client = ChatClient(
            model,
            cache_dir=store.cache / "infer" if store is not None else None,
            namespace="infer",
            concurrency=self.batch_size,
        )

    def prompt_template(self, generation: GenerationConfig, model: str) -> str | None:
        """The text template sent to completions; None for chat, whose template lives on the server."""
        if self.endpoint == "chat":
            if generation.template != "chat":
                raise UsageError(
                    f"--template {generation.template}: a chat endpoint wraps every prompt in the server's chat "
                    "template, so it gets the bare instruction (--template chat); send the "
                    f"{generation.template} text with --endpoint completions"
                )
            return None
        if generation.template == "chat":
            raise UsageError(
                "--template chat with --endpoint completions: the chat template lives on the server; "
                "use --endpoint chat, or --template alpaca|none"
            )
        return template_text(generation.template)

    def _request(self, prompt: Prompt, generation: GenerationConfig) -> ChatRequest:
        sampling = {"temperature": 0.0, "max_tokens": generation.max_new_tokens}
        if generation.do_sample:
            sampling.update(temperature=generation.temperature, top_p=generation.top_p, seed=generation.seed)
        if self.endpoint == "completions":
            return ChatRequest(prompt=render_text(generation.template, prompt.instruction, prompt.input), **sampling)
        messages = chat_messages(prompt.instruction, prompt.input, generation.system)
        return ChatRequest.of(*((m["role"], m["content"]) for m in messages), **sampling)

    def generate(self, prompts: Sequence[Prompt], generation: GenerationConfig) -> Iterator[tuple[int, Completion]]:
        requests = [self._request(prompt, generation) for prompt in prompts]
        for i, result in self.client.complete_many(requests):
            yield i, Completion(result.text.strip(), result.prompt_tokens, result.completion_tokens)
