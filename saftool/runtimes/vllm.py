"""vLLM offline inference (an optional extra: `pip install 'saftool[vllm]'`).

vLLM schedules its own batches; `batch_size` here is how many prompts go to one `generate` call,
which is also what a kill can lose. Prompts are rendered, tokenized and cut exactly as the hf
backend does (`saftool.runtimes.local`) and handed over as token ids, so both ask the same thing;
`max_model_len` is the model's context, so no prompt fails the batch. Generation stops at the same
stop tokens, in the same dtype as hf (bf16 where the GPU has it, else float32). `max_memory` of the
free GPU memory goes to vLLM (weights and KV cache), `tensor_parallel` splits the model over that
many GPUs. A PEFT adapter directory runs as a LoRA request on its base, with `max_lora_rank` from
the adapter's config; a QLoRA adapter is refused (it belongs on its 4-bit base: hf --load-in-4bit).
Weights load on the first `generate`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

from pydantic import Field

from saftool.adapters import ModelDir, open_model_dir
from saftool.errors import UsageError
from saftool.hub import resolve_model
from saftool.records import GenerationConfig
from saftool.runtimes import Completion, LocalOptions, Prompt
from saftool.runtimes.local import (
    check_max_memory,
    check_template,
    context_length,
    encode_prompts,
    fit_context,
    load_tokenizer,
    local_dtype,
    model_config,
    stop_token_ids,
)

# ranks vLLM's LoRA kernels are built for; an adapter's rank is rounded up to one of them
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def engine_args(
    local: ModelDir, config, options: VLLMRuntime.Options, free_bytes: int, total_bytes: int, dtype: str
) -> dict:
    """The `vllm.LLM` arguments for a model directory, given the GPU's free and total memory."""
    args = {
        "model": str(local.base.path if local.base else local.path),
        "tokenizer": local.tokenizer,
        "dtype": dtype,
        "trust_remote_code": False,
        "tensor_parallel_size": options.tensor_parallel,
        # vLLM's share is of the whole card; max_memory is of what is free beside other processes
        "gpu_memory_utilization": round(options.max_memory * free_bytes / total_bytes, 4),
        "max_model_len": context_length(config),
    }
    if local.base is not None:
        rank = json.loads((local.path / "adapter_config.json").read_text(encoding="utf-8")).get("r", 8)
        args["enable_lora"] = True
        args["max_lora_rank"] = next((r for r in LORA_RANKS if r >= rank), rank)
    return args


def _refuse_qlora(model: str) -> None:
    """A QLoRA adapter was trained against the NF4 rounding of its base; vLLM would apply it to the
    bf16 base, a model it was never trained with, so the answers would not be the trained model's.
    Its merged export (`saftool export --merged`, which carries no train_run.json) is the way to ask
    vLLM on the bf16 base on purpose."""
    record = Path(model) / "train_run.json"
    if not record.is_file():
        return
    try:
        method = json.loads(record.read_text(encoding="utf-8")).get("method")
    except (OSError, ValueError):
        return
    if method == "qlora":
        raise UsageError(
            f"{model} is a QLoRA adapter, trained on its base's 4-bit NF4 weights; vLLM would run it on the bf16 "
            "base, which it was not trained with: use --backend hf --load-in-4bit, or export it merged "
            "(saftool export --merged DIR) and give vllm DIR to evaluate it on the bf16 base on purpose"
        )


class VLLMRuntime:
    name = "vllm"
    default_batch_size = 512
    loads_model_dir = True
    default_template = "alpaca"
    weights = None  # hf's dtype, so the answers are those of the weights as saved

    class Options(LocalOptions):
        tensor_parallel: int = Field(default=1, description="GPUs to split the model over.")

    def __init__(self, model: str, options: Options | None = None, *, store=None):
        """`model`: a model directory, or with `store` a store name or a Hub id (`resolve_model`)."""
        from saftool.devices import resolve_device

        options = options or self.Options()

        # vLLM picks its device itself (a CUDA build runs on the GPU whatever it is told), so a CPU
        # request is refused rather than silently run on the GPU; auto means a GPU must be visible
        if options.device == "cpu":
            raise UsageError("the vllm backend runs on a GPU only; use --backend hf for --device cpu")
        check_max_memory(options.max_memory)
        if options.tensor_parallel < 1:
            raise UsageError(f"--tensor-parallel {options.tensor_parallel}: give a number of GPUs, 1 or more")
        self.source = resolve_model(model, store)
        _refuse_qlora(str(self.source.path))
        resolve_device("cuda" if options.device == "auto" else options.device)
        self.local = open_model_dir(str(self.source.path))
        self.options = options
        self.batch_size = options.batch_size or self.default_batch_size
        self.tokenizer = load_tokenizer(self.local)
        self.config = model_config(self.local)
        self.stops = stop_token_ids(self.tokenizer, self.local)
        self.lora = None
        self._llm = None

    @property
    def llm(self):
        if self._llm is None:
            import torch
            from vllm import LLM

            free, total = torch.cuda.mem_get_info()
            dtype = str(local_dtype(True)).removeprefix("torch.")
            self._llm = LLM(**engine_args(self.local, self.config, self.options, free, total, dtype))
            if self.local.base is not None:
                from vllm.lora.request import LoRARequest

                self.lora = LoRARequest("adapter", 1, str(self.local.path))
        return self._llm

    def prompt_template(self, generation: GenerationConfig, model: str) -> str:
        return check_template(self.tokenizer, generation, model)

    def sampling_params(self, generation: GenerationConfig):
        from vllm import SamplingParams

        return SamplingParams(
            max_tokens=generation.max_new_tokens,
            temperature=generation.temperature if generation.do_sample else 0.0,
            top_p=generation.top_p if generation.do_sample else 1.0,
            seed=generation.seed if generation.do_sample else None,
            stop_token_ids=list(self.stops),
            skip_special_tokens=True,
        )

    def generate(
        self, prompts: Sequence[Prompt], generation: GenerationConfig
    ) -> Iterator[tuple[int, Completion]]:
        encoded = fit_context(
            encode_prompts(self.tokenizer, prompts, generation),
            context_length(self.config),
            generation.max_new_tokens,
        )
        params = self.sampling_params(generation)
        llm = self.llm
        for start in range(0, len(encoded), self.batch_size):
            chunk = [{"prompt_token_ids": ids} for ids in encoded[start : start + self.batch_size]]
            outputs = llm.generate(chunk, params, lora_request=self.lora, use_tqdm=False)
            for offset, out in enumerate(outputs):
                best = out.outputs[0]
                yield (
                    start + offset,
                    Completion(best.text.strip(), len(out.prompt_token_ids), len(best.token_ids)),
                )
