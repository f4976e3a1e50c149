"""What the local backends (hf, vllm) share, so they ask a model the same thing and stop at the same place:
the tokenizer, the rendered and tokenized prompts, the cut of prompts past the context, the stop
tokens, the dtype and the KV-cache budget. Nothing here loads weights.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from saftool.adapters import ModelDir
from saftool.errors import UsageError
from saftool.records import GenerationConfig
from saftool.runtimes import Prompt
from saftool.template import chat_messages, render_text, template_text


@dataclass(frozen=True)
class Encoded:
    ids: list[int]
    head: int  # leading tokens a cut must keep: BOS and the template's preamble (system turn, user header)


DTYPES = ("auto", "float32", "bfloat16")
CPU_BF16_MIN_HIDDEN = 256  # auto runs a CPU model in bf16 from this hidden size up (see local_dtype)


def local_dtype(use_cuda: bool, requested: str = "auto", config=None):
    """The dtype a local model runs in: one rule for hf and vllm, so both run the same numbers.

    `auto` is bf16 on a GPU that has it. On a CPU with bf16 matrix hardware (`devices.cpu_has_bf16`)
    it is bf16 for models of hidden size `CPU_BF16_MIN_HIDDEN` and up, whose matmuls dominate: on
    SmolLM2-135M (hidden 576, AMX) greedy answers to 32 of the study's prompts came 2.1x faster than
    in float32 (156 against 75 tokens/s, one thread, load average 3-4), and 22 of the 32 100-token
    answers changed, after their first 19 words (median; 0 to 75; bench/infer_generate.py). The tool-built tiny models (hidden 128)
    stay in float32, where per-op dispatch, not arithmetic, takes the time and their answers stay
    what they were. Anything else is float32; `float32` and `bfloat16` force one.
    """
    import torch

    if requested not in DTYPES:
        raise UsageError(f"unknown dtype {requested!r}; choose one of: {', '.join(DTYPES)}")
    if requested != "auto":
        return getattr(torch, requested)
    if use_cuda:
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    from saftool.devices import cpu_has_bf16

    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    hidden = getattr(text, "hidden_size", None) or 0
    return torch.bfloat16 if hidden >= CPU_BF16_MIN_HIDDEN and cpu_has_bf16() else torch.float32


def check_max_memory(fraction: float) -> None:
    """`--max-memory` is a share of the free memory (hf: the KV cache's; vllm: weights and cache)."""
    if not 0 < fraction <= 1:
        raise UsageError(f"--max-memory {fraction:g}: give a share of the free memory, in (0, 1]")


def load_tokenizer(local: ModelDir):
    """The model's tokenizer, left-padding, with a pad token (its EOS where it has none, as Llama's)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(local.tokenizer, trust_remote_code=False, padding_side="left")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def model_config(local: ModelDir):
    """The model's config.json (the base's, for an adapter), read without its weights."""
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(str(local.base.path if local.base else local.path), trust_remote_code=False)


def stop_token_ids(tok, local: ModelDir) -> list[int]:
    """The tokenizer's EOS and every id in the model's `generation_config.eos_token_id` (an int or a
    list: Llama-3.1-Instruct stops at <|end_of_text|>, <|eom_id|> and <|eot_id|>)."""
    stops = [tok.eos_token_id] if tok.eos_token_id is not None else []
    for folder in (local.path, local.base.path if local.base else None):
        if folder is not None and (folder / "generation_config.json").is_file():
            from transformers import GenerationConfig as HFGenerationConfig

            eos = HFGenerationConfig.from_pretrained(str(folder)).eos_token_id
            stops += [eos] if isinstance(eos, int) else list(eos or [])
            break
    return list(dict.fromkeys(stops))


def check_template(tok, generation: GenerationConfig, model: str) -> str:
    """The text of the run's template (for its hash); a clear error where the model cannot render it."""
    if generation.template != "chat":
        return template_text(generation.template)
    if not getattr(tok, "chat_template", None):
        raise UsageError(
            f"--template chat: {model} has no chat template (none in its tokenizer_config.json or "
            "chat_template.jinja); use --template alpaca or none"
        )
    try:
        _render_chat(tok, Prompt("x"), generation.system)
    except Exception as exc:  # the template's own raise_exception(), e.g. Gemma's "System role not supported"
        raise UsageError(f"--template chat: {model}'s chat template refuses the prompt: {exc}") from None
    return template_text("chat", tok.chat_template)


def _render_chat(tok, prompt: Prompt, system: str | None) -> str:
    messages = chat_messages(prompt.instruction, prompt.input, system)
    return tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def encode_prompts(tok, prompts: Sequence[Prompt], generation: GenerationConfig) -> list[Encoded]:
    """Token ids of each prompt in the run's template.

    `chat` renders the tokenizer's chat template (`add_generation_prompt=True`) and tokenizes the text
    without adding special tokens, since the template writes BOS itself: the ids are exactly
    `apply_chat_template(..., tokenize=True)`'s. Text templates are tokenized as `train` tokenizes
    them, special tokens added (Llama's BOS). `head` is what the prompt shares with the same template
    around an empty instruction: the part a cut must keep.
    """
    if generation.template == "chat":
        texts = [_render_chat(tok, p, generation.system) for p in prompts]
        empty = _render_chat(tok, Prompt(""), generation.system)
        special = False
    else:
        texts = [render_text(generation.template, p.instruction, p.input) for p in prompts]
        empty = render_text(generation.template, "")
        special = True
    frame = tok(empty, add_special_tokens=special)["input_ids"]
    encoded = []
    for ids in tok(texts, add_special_tokens=special)["input_ids"]:
        head = 0
        while head < min(len(ids), len(frame)) and ids[head] == frame[head]:
            head += 1
        encoded.append(Encoded(ids, head))
    return encoded


def context_length(config) -> int | None:
    """Positions the model was built for (GPT-2's n_positions is aliased to this name)."""
    return getattr(config, "max_position_embeddings", None) or None


def fit_context(encoded: Sequence[Encoded], context: int | None, max_new_tokens: int) -> list[list[int]]:
    """Prompts cut to fit the context with the answer: the head (BOS, the chat preamble) stays, then
    the end (the instruction's last words and the answer cue); the middle goes.

    Some benchmark prompts are far longer than a small model's context (seed-safe holds one of
    12,600 tokens); beyond it positions are untrained and the model's answer means nothing. A head
    longer than half the room (a very long system prompt) keeps only its first token.
    """
    if not context:
        return [e.ids for e in encoded]
    limit = max(1, context - max_new_tokens)
    out, cut = [], 0
    for e in encoded:
        if len(e.ids) <= limit:
            out.append(e.ids)
            continue
        cut += 1
        head = e.head if e.head <= limit // 2 else min(1, e.head)
        out.append(e.ids[:head] + e.ids[len(e.ids) - (limit - head) :])
    if cut:
        from saftool.console import warn

        warn(
            f"{cut} prompt(s) longer than the model's context ({context} tokens, {max_new_tokens} kept for the "
            f"answer): kept their first template tokens and their last words, {limit} tokens in all"
        )
    return out


def kv_bytes_per_token(config, dtype_bytes: int) -> int:
    """Bytes of keys and values one position takes over all layers."""
    text = getattr(config, "text_config", None) or config
    heads = text.num_attention_heads
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    return 2 * text.num_hidden_layers * kv_heads * head_dim * dtype_bytes


def rows_that_fit(free_bytes: int, fraction: float, row_bytes: int, wanted: int) -> int:
    """How many rows (prompts decoded together, each `row_bytes` of cache) `fraction` of `free_bytes`
    holds, at most `wanted`. A budget short of one row is an error naming the option, not an OOM."""
    budget = int(free_bytes * fraction)
    fit = budget // max(1, row_bytes)
    if fit < 1:
        raise UsageError(
            f"--max-memory {fraction:g}: {budget / 2**30:.1f} GiB of the {free_bytes / 2**30:.1f} GiB free holds "
            f"no prompt's KV cache ({row_bytes / 2**30:.2f} GiB each); raise it or lower --max-new-tokens"
        )
    return min(wanted, fit)


def free_memory(device) -> int:
    """Free bytes where the cache will live: the GPU's free memory, or the host's available memory.

    On the GPU, blocks PyTorch's caching allocator holds but no tensor uses count as free: the driver's
    `mem_get_info` counts them as used, so each batch after the first (whose cache the allocator keeps)
    would be sized from a fraction of what the first had."""
    import torch

    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
