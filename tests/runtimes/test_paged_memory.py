"""The paged decoder's KV cache (`saftool.runtimes.paged`) on the cards the study runs on, checked by
transformers' own cache-sizing code with no GPU.

Each case builds transformers' `PagedAttentionCache` on the meta device, as its continuous-batching
manager builds it on the card, with transformers' reading of the device's memory replaced by the
card's: a card of 80 GB (H100) or 141 GB (H200), decimal as the makers count them (a real card shows
a little more), holding the bf16 weights and a CUDA context. Llama-2-7B and Llama-3-8B are their
configs built in code (`AutoConfig.for_model`, nothing downloaded); sets of 388, 700, 728 and 939
prompts (the study's eval sets), 100 and 512 new tokens, under sdpa and under flash attention with
async batching (what transformers switches to where flash-attn is installed). A case passes when
the cache the runtime hands transformers passes its footprint check (`_check_footprint`, which
raises MemoryError) and holds the longest prompt.
"""

from __future__ import annotations

import copy
import csv
import inspect
from unittest import mock

import pytest

from saftool.errors import UsageError
from saftool.runtimes.paged import CUDA_CONTEXT_BYTES, model_bytes, plan_for_card

GB = 10**9
CARDS = {"H100": 80 * GB, "H200": 141 * GB}
SETS = (388, 700, 728, 939)
NEW_TOKENS = (100, 512)
TYPICAL_PROMPT = 200  # tokens: the run of the study's harmful prompts (and the simulation)
SEED_SAFE = "data/seed-eval/all_datasets_koala_vicuna_wizard_sinstruct_shuffled.csv"


# the published configs' shapes (Llama-2-7b-hf, Meta-Llama-3-8B)
MODELS = {
    "llama2-7b": dict(
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        vocab_size=32000,
        max_position_embeddings=4096,
    ),
    "llama3-8b": dict(
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
        max_position_embeddings=8192,
        rope_theta=500000.0,
    ),
}


@pytest.fixture(scope="module")
def weights():
    """Each model's config and the bytes of its bf16 weights (counted on the meta device)."""
    import torch
    from transformers import AutoConfig

    out = {}
    for name, shape in MODELS.items():
        config = AutoConfig.for_model("llama", **shape)
        out[name] = (config, model_bytes(config, torch.bfloat16))
    return out


def _built_on_card(config, batching, spans, card: int, used: int, attention: str):
    """The cache transformers' manager builds for `batching` on the card: the config resolved as the
    manager resolves it, then `PagedAttentionCache` with the card's memory breakdown. Raises what
    transformers raises (MemoryError from its footprint check)."""
    import torch
    from transformers.generation.continuous_batching import cache as cb_cache
    from transformers.generation.continuous_batching.initialization import (
        resolve_continuous_batching_config,
        resolve_using_hints,
    )
    from transformers.generation.continuous_batching.utils import WorkloadHints

    text = copy.deepcopy(config)
    text._attn_implementation = attention
    hints = WorkloadHints(max_prompt_length=max(spans), max_generated_length=0, num_requests=len(spans))
    on_card = {"device": torch.device("cuda")}  # transformers 5.19 takes no device: it reads the default one
    if "device" not in inspect.signature(resolve_continuous_batching_config).parameters:
        on_card = {}
    resolved = resolve_continuous_batching_config(
        config=text, cb_config=batching, workload_hints=hints, has_logit_processors=False, **on_card
    )
    if attention.startswith("flash"):
        # as on a CUDA card with flash-attn: CUDA graphs, double-buffered IO and the decode path's block
        # table, which this machine (no CUDA, no flash-attn) resolves away
        resolved.use_cuda_graph, resolved.use_async_batching = (True, True), True
        hinted = copy.deepcopy(batching)
        resolve_using_hints(hinted, hints)
        resolved.max_blocks_per_request = hinted.max_blocks_per_request
    reading = (torch.device("cuda"), card, used, used)  # (device, total, reserved, allocated)
    with mock.patch.object(cb_cache, "get_device_and_memory_breakdown", lambda: reading):
        return cb_cache.PagedAttentionCache(
            config=text,
            continuous_batching_config=resolved,
            device=torch.device("meta"),
            distributed_helper=cb_cache.DistributedHelper(device_mesh=None, cpu_group_timeout=None),
            dtype=torch.bfloat16,
            model_supports_logits_to_keep=True,
        )


def _check_case(config, weight_bytes, spans, card):
    used = weight_bytes + CUDA_CONTEXT_BYTES
    plan = plan_for_card(config, spans, 0.8, card)
    assert plan.used == used and plan.budget == int((card - used) * 0.8)  # read after the weights
    assert plan.cache_tokens >= max(spans)
    for attention in ("sdpa", "flash_attention_2"):
        cache = _built_on_card(config, plan.batching_config(), spans, card, used, attention)
        assert cache.num_blocks * 256 >= max(spans), attention
        if not plan.fills_budget:  # the set's own need: every prompt in flight at once
            assert cache.num_blocks >= sum(-(-s // 256) for s in spans)
    return plan


@pytest.mark.parametrize("card", list(CARDS))
@pytest.mark.parametrize("model", list(MODELS))
def test_every_study_set_builds_its_cache_on_the_card(weights, model, card):
    """Every set size and answer length, with one prompt cut to the whole context (the longest the
    runtime ever passes) among typical ones."""
    config, weight_bytes = weights[model]
    context = config.max_position_embeddings
    for n in SETS:
        for new in NEW_TOKENS:
            spans = [context] + [TYPICAL_PROMPT + new] * (n - 1)
            _check_case(config, weight_bytes, spans, CARDS[card])


@pytest.mark.parametrize("new", NEW_TOKENS)
@pytest.mark.parametrize("model", list(MODELS))
def test_the_longest_seed_safe_prompt_cut_to_the_context_builds(shared, weights, model, new):
    """seed-safe's longest prompt, rendered and cut by the runtime's own rule (`fit_context`), with
    the largest set of the study on the smaller card. Its tokens come from a byte-level BPE built in
    code with Llama's BOS rule (no tokenizer is downloaded): the real Llama tokenizers also give it
    more tokens than either context (about 12,600), so the cut leaves the same span."""
    from saftool.records import GenerationConfig
    from saftool.runtimes import Prompt
    from saftool.runtimes.local import encode_prompts, fit_context
    from tests.runtimes.archfix import ARCHS, build_tokenizer

    with open(shared / SEED_SAFE, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    longest = max(rows, key=lambda r: len(r["instruction"]) + len(r["input"] or ""))
    config, weight_bytes = weights[model]
    context = config.max_position_embeddings
    tok = build_tokenizer(ARCHS["llama2"])
    encoded = encode_prompts(tok, [Prompt(longest["instruction"], longest["input"] or "")], GenerationConfig())
    assert len(encoded[0].ids) > context
    (cut,) = fit_context(encoded, context, new)
    assert len(cut) == context - new
    spans = [len(cut) + new] + [TYPICAL_PROMPT + new] * (max(SETS) - 1)
    _check_case(config, weight_bytes, spans, CARDS["H100"])


def test_a_card_too_small_for_the_weights_and_one_cache_says_so_with_the_sizes(weights):
    """Llama-2-7B (12.6 GiB of bf16 weights) on a 16 GB card leaves 1.5 GiB at --max-memory 0.8:
    less than one 4,096-position cache (2 GiB). One line with the sizes, not transformers' MemoryError."""
    config, _ = weights["llama2-7b"]
    with pytest.raises(UsageError) as err:
        plan_for_card(config, [4096] * 10, 0.8, 16 * GB)
    assert str(err.value) == (
        "--max-memory 0.8: 0.8 of the 1.85 GiB free (13.05 of 14.90 GiB in use, the weights among them) holds "
        "no paged KV cache for the longest prompt (4096 positions: 2.00 GiB, plus transformers' working buffers); "
        "use a bigger card, raise --max-memory or lower --max-new-tokens"
    )
    # the same card holds short prompts' caches: the refusal is about the longest prompt, not the set
    assert plan_for_card(config, [300] * 10, 0.8, 16 * GB).cache_tokens >= 300


def test_a_set_that_fits_gets_a_cache_of_its_own_size_not_the_budget(weights):
    """A few prompts on a big card: their own need, not 80% of the card (zeroed, and kept from other
    processes), while a study set that needs more than the budget gets the budget."""
    config, _ = weights["llama3-8b"]
    small = plan_for_card(config, [300] * 20, 0.8, CARDS["H200"])
    assert not small.fills_budget and small.num_blocks == 40
    assert small.cache_bytes < small.budget / 10
    big = plan_for_card(config, [4096] * 939, 0.8, CARDS["H100"])
    assert big.fills_budget and big.cache_bytes < big.budget
    assert big.budget - big.cache_bytes < big.budget / 3  # the cache takes most of what it may
