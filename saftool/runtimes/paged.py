"""transformers' continuous batching for the hf backend (`--decoder paged`, its default on CUDA): the
size of the paged KV cache, checked by transformers' own sizing code, and answers taken as they finish.

Sizing. transformers builds the cache when generation starts, after the weights are on the device. It
adds its working buffers to the cache (logit rows, per-batch-token activations, cache reads, attention
masks) and refuses a total above `max_memory_percent` of the free memory
(`PagedAttentionMemoryHandler._check_footprint`, a MemoryError). So saftool never sizes the cache by
the KV bytes alone: `plan` runs transformers' own sizing on the meta device (nothing is allocated)
under the real memory reading, first for the cache the set needs with every prompt in flight at once,
and where that does not fit, lets transformers fill `--max-memory` of the free memory itself (as vLLM
fills its `gpu_memory_utilization`); its queue then holds the prompts that wait. A budget too small
for the longest prompt's cache is a `UsageError` with the sizes, before generation starts.
`card_memory` replaces the reading by a given card's, so tests and `bench/gpu/acceptance.py --plan`
can ask what a card they do not have would build (`plan_for_card`).

Streaming. `generate_paged` adds every prompt to transformers' continuous-batching manager and yields
each answer as it finishes, so `infer` appends answers while the set runs (a kill loses at most the
answers not yet written) and its progress bar moves.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from saftool.errors import UsageError

GiB = 2**30
CUDA_CONTEXT_BYTES = GiB // 2  # what the CUDA context and cuBLAS workspaces take beside the weights, about


@dataclass(frozen=True)
class PagedPlan:
    """What transformers builds for a set: its cache and the memory it may take."""

    fraction: float  # --max-memory
    total: int  # bytes of the device, as transformers reads them
    used: int  # bytes already in use there (the weights among them)
    budget: int  # bytes the cache and its working buffers may take: max_memory of the free bytes
    num_blocks: int  # whole-model blocks of `page_size` positions the cache holds
    page_size: int
    max_batch_tokens: int  # tokens one forward pass takes (prompt chunks and decode steps together)
    cache_bytes: int  # the KV cache tensor itself
    fills_budget: bool  # the set's own need did not fit: transformers sized the cache to the budget

    @property
    def cache_tokens(self) -> int:
        return self.num_blocks * self.page_size

    def batching_config(self):
        """The `ContinuousBatchingConfig` generation runs with: this plan's cache, or (where it fills the
        budget) none given, so transformers sizes it to the budget from its own reading of the memory."""
        from transformers import ContinuousBatchingConfig

        return ContinuousBatchingConfig(
            max_memory_percent=self.fraction, num_blocks=None if self.fills_budget else self.num_blocks
        )


def blocks_needed(spans: Sequence[int], page_size: int) -> int:
    """Blocks a cache needs to hold every prompt at once, each `span` positions (prompt plus answer)."""
    return sum(-(-span // page_size) for span in spans)


def plan(
    config, dtype, spans: Sequence[int], fraction: float, *, device=None, logits_to_keep: bool | None = None
) -> PagedPlan:
    """The paged cache transformers would build for prompts of `spans` positions (prompt plus answer),
    within `fraction` of the free memory as transformers reads it (after the weights are loaded: call
    this once they are). The set's own need when it fits, else the whole budget; a `UsageError` with
    the sizes where the budget holds no cache for the longest prompt.

    `config` is the model's config, `dtype` its weights' (the cache's) dtype, `device` where the cache
    will live (default: cuda where available, as transformers assumes). `logits_to_keep`: whether the
    model's forward takes it (transformers then reserves logit rows per request, not per token);
    default: read from the model class the config names. Nothing is allocated: the cache is built on
    the meta device by transformers' own `PagedAttentionCache`, with the attention implementation
    the config asks for (sdpa unless set; it reserves more than flash attention does).
    """
    import torch
    from transformers import ContinuousBatchingConfig
    from transformers.generation.continuous_batching import cache as cb_cache

    if device is None:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if logits_to_keep is None:
        logits_to_keep = _forward_takes_logits_to_keep(config)
    text = copy.deepcopy(config.get_text_config())
    if getattr(text, "_attn_implementation", None) is None:
        text._attn_implementation = "sdpa"  # what from_pretrained picks for these models
    need = ContinuousBatchingConfig(max_memory_percent=fraction)
    need.num_blocks = blocks_needed(spans, need.page_size)
    _, total, reserved, allocated = cb_cache.get_device_and_memory_breakdown()
    used = max(reserved, allocated)
    budget = int((total - used) * fraction)
    for batching in (need, ContinuousBatchingConfig(max_memory_percent=fraction)):
        resolved = _resolve(text, batching, spans, device)
        try:
            cache = cb_cache.PagedAttentionCache(
                config=text,
                continuous_batching_config=resolved,
                device=torch.device("meta"),
                distributed_helper=cb_cache.DistributedHelper(device_mesh=None, cpu_group_timeout=None),
                dtype=dtype,
                model_supports_logits_to_keep=logits_to_keep,
            )
        except MemoryError:
            continue  # the footprint check: try the next, or fall through to the error below
        except ValueError as exc:
            if "num_sectors" not in str(exc):  # the sizing's "no room at all"; anything else is not ours
                raise
            continue
        if cache.num_blocks * resolved.page_size < max(spans):
            break
        return PagedPlan(
            fraction=fraction,
            total=total,
            used=used,
            budget=budget,
            num_blocks=cache.num_blocks,
            page_size=resolved.page_size,
            max_batch_tokens=cache.max_batch_tokens,
            cache_bytes=cache.cache_tensor.numel(),
            fills_budget=batching is not need,
        )
    raise too_small(config, dtype, max(spans), fraction, total, used)


def too_small(config, dtype, span: int, fraction: float, total: int, used: int) -> UsageError:
    """The one-line error for a budget that holds no cache for a prompt of `span` positions."""
    from saftool.runtimes.local import kv_bytes_per_token

    need = kv_bytes_per_token(config, dtype.itemsize) * span
    free = max(0, total - used)
    return UsageError(
        f"--max-memory {fraction:g}: {fraction:g} of the {free / GiB:.2f} GiB free ({used / GiB:.2f} of "
        f"{total / GiB:.2f} GiB in use, the weights among them) holds no paged KV cache for the longest prompt "
        f"({span} positions: {need / GiB:.2f} GiB, plus transformers' working buffers); use a bigger card, "
        "raise --max-memory or lower --max-new-tokens"
    )


@contextmanager
def card_memory(total: int, used: int) -> Iterator[None]:
    """transformers' reading of the device's memory replaced by a card of `total` bytes with `used`
    in use, while the block runs: `plan` then says what that card would build. For plans and tests
    only; generation must never run inside it."""
    from transformers.generation.continuous_batching import cache as cb_cache

    real = cb_cache.get_device_and_memory_breakdown

    def reading():
        import torch

        return torch.device("cuda"), total, used, used

    cb_cache.get_device_and_memory_breakdown = reading
    try:
        yield
    finally:
        cb_cache.get_device_and_memory_breakdown = real


def model_bytes(config, dtype) -> int:
    """Bytes of the model's weights in `dtype`, counted on the meta device (nothing is allocated)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return sum(p.numel() * p.element_size() for p in model.parameters())


def plan_for_card(
    config, spans: Sequence[int], fraction: float, card_bytes: int, *, dtype=None, used_bytes: int | None = None
) -> PagedPlan:
    """`plan` on a card of `card_bytes` holding the model's weights (bf16 unless `dtype`) and a CUDA
    context, or `used_bytes` in all: what `saftool infer --decoder paged` would build there. Needs no
    GPU. Raises the same `UsageError` as a real run where the card is too small."""
    import torch

    dtype = dtype or torch.bfloat16
    if used_bytes is None:
        used_bytes = model_bytes(config, dtype) + CUDA_CONTEXT_BYTES
    with card_memory(card_bytes, used_bytes):
        return plan(config, dtype, spans, fraction, device=torch.device("cuda"))


def generate_paged(
    model, prompts: Sequence[Sequence[int]], max_new_tokens: int, stops: Sequence[int], pad: int, fraction: float
) -> Iterator[tuple[int, list[int]]]:
    """Greedy answers of `prompts` (token ids) with transformers' continuous batching, yielded as
    (position in `prompts`, new tokens) as each finishes, in any order.

    The cache is `plan`'s, read after the weights are on the device. Every prompt is queued at once:
    transformers admits them as cache blocks free up. Closing the generator (a kill's Ctrl-C, or the
    consumer stopping) stops the manager and drops the prompts still running.
    """
    from transformers import GenerationConfig as HFGenerationConfig

    if not prompts:
        return
    spans = [len(ids) + max_new_tokens for ids in prompts]
    chosen = plan(
        model.config, model.dtype, spans, fraction, device=model.device, logits_to_keep=model._supports_logits_to_keep()
    )
    config = HFGenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad, eos_token_id=list(stops))
    with ExitStack() as stack:
        try:  # entering builds the cache: transformers' footprint check, for real this time
            manager = stack.enter_context(
                model.continuous_batching_context_manager(
                    generation_config=config,
                    continuous_batching_config=chosen.batching_config(),
                    workload_hints=_hints(spans),
                    block=True,
                    timeout=30,
                )
            )
        except MemoryError:  # the free memory shrank since `plan` read it (another process took some)
            raise too_small(model.config, model.dtype, max(spans), fraction, chosen.total, chosen.used) from None
        ids = manager.add_requests(inputs=[list(ids) for ids in prompts], max_new_tokens=max_new_tokens)
        where = {request: k for k, request in enumerate(ids)}
        while where:
            result = manager.get_result(timeout=1)
            if result is None:
                if not manager.is_running():
                    raise RuntimeError(
                        f"transformers' continuous batching stopped with {len(where)} prompt(s) unanswered "
                        "(its log says why)"
                    )
                continue
            if not result.is_finished():
                continue
            if result.error:
                raise RuntimeError(f"transformers' continuous batching failed: {result.error}")
            yield where.pop(result.request_id), list(result.generated_tokens)


def _hints(spans: Sequence[int]):
    """What transformers sizes its per-request buffers by: the longest span (only the sum of a prompt's
    and an answer's lengths counts) and the number of prompts. `plan` and the manager get the same."""
    from transformers.generation.continuous_batching.utils import WorkloadHints

    return WorkloadHints(max_prompt_length=max(spans), max_generated_length=0, num_requests=len(spans))


def _resolve(text_config, batching, spans: Sequence[int], device):
    """`batching` resolved as the manager resolves it before it builds the cache (greedy: no logit processors)."""
    from transformers.generation.continuous_batching.initialization import resolve_continuous_batching_config

    # transformers 5.19 takes no device (it reads the default one)
    kwargs = {"device": device} if "device" in inspect.signature(resolve_continuous_batching_config).parameters else {}
    return resolve_continuous_batching_config(
        config=text_config,
        cb_config=batching,
        workload_hints=_hints(spans),
        has_logit_processors=False,
        **kwargs,
    )


def _forward_takes_logits_to_keep(config) -> bool:
    """Whether the causal-LM class `config` names takes `logits_to_keep`, as transformers asks a model."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    try:
        cls = MODEL_FOR_CAUSAL_LM_MAPPING[type(config)]
    except KeyError:
        return False  # transformers then reserves a logit row per batch token: the larger reservation
    return "logits_to_keep" in inspect.signature(cls.forward).parameters
