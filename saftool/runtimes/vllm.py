"""vLLM offline inference (an optional extra: `pip install 'saftool[vllm]'`).

vLLM schedules its own batches; `batch_size` here is how many prompts go to one `generate` call,
which is also what a kill can lose. A PEFT adapter directory runs as a LoRA request on its base.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from saftool.records import GenerationConfig
from saftool.runtimes import Completion, RuntimeOptions, open_model_dir


class VLLMRuntime:
    default_batch_size = 512
    loads_model_dir = True

    def __init__(self, model: str, options: RuntimeOptions):
        from vllm import LLM

        from saftool.train import resolve_device

        local = open_model_dir(model)
        resolve_device("cuda" if options.device == "auto" else options.device)
        self.batch_size = options.batch_size or self.default_batch_size
        self.lora = None
        if local.base is None:
            self.llm = LLM(model=str(local.path), trust_remote_code=False)
        else:
            from vllm.lora.request import LoRARequest

            self.llm = LLM(model=local.base, tokenizer=local.tokenizer, enable_lora=True, trust_remote_code=False)
            self.lora = LoRARequest("adapter", 1, str(local.path))

    def generate(self, prompts: Sequence[str], generation: GenerationConfig) -> Iterator[tuple[int, Completion]]:
        from vllm import SamplingParams

        params = SamplingParams(
            max_tokens=generation.max_new_tokens,
            temperature=generation.temperature if generation.do_sample else 0.0,
            top_p=generation.top_p if generation.do_sample else 1.0,
        )
        for start in range(0, len(prompts), self.batch_size):
            chunk = list(prompts[start : start + self.batch_size])
            outputs = self.llm.generate(chunk, params, lora_request=self.lora, use_tqdm=False)
            for offset, out in enumerate(outputs):
                best = out.outputs[0]
                yield start + offset, Completion(best.text.strip(), len(out.prompt_token_ids), len(best.token_ids))
