"""vLLM offline inference (an optional extra: `pip install 'saftool[vllm]'`).

vLLM schedules its own batches; `batch_size` here is how many prompts go to one `generate` call,
which is also what a kill can lose. A PEFT adapter directory runs as a LoRA request on its base.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from saftool.errors import UsageError
from saftool.records import GenerationConfig
from saftool.runtimes import Completion, RuntimeOptions, open_model_dir


class VLLMRuntime:
    default_batch_size = 512
    loads_model_dir = True

    def __init__(self, model: str, options: RuntimeOptions):
        from saftool.devices import resolve_device

        # vLLM picks its device itself (a CUDA build runs on the GPU whatever it is told), so a CPU
        # request is refused rather than silently run on the GPU; auto means a GPU must be visible
        if options.device == "cpu":
            raise UsageError("the vllm backend runs on a GPU only; use --backend hf for --device cpu")
        resolve_device("cuda" if options.device == "auto" else options.device)
        local = open_model_dir(model)
        from vllm import LLM

        self.batch_size = options.batch_size or self.default_batch_size
        self.lora = None
        if local.base is None:
            self.llm = LLM(model=str(local.path), trust_remote_code=False)
        else:
            from vllm.lora.request import LoRARequest

            self.llm = LLM(model=str(local.base.path), tokenizer=local.tokenizer, enable_lora=True, trust_remote_code=False)
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
