"""Training only the top layers of a decoder without recomputing the frozen ones.

With LoRA on the top N decoder layers only (`TrainConfig.lora_layers`), everything below them (the
embeddings and the lower layers) is frozen and, the base having no dropout, a fixed function of each
example's tokens. The lean CPU path computes those layers' output once per example, before training,
in length-grouped batches without gradients, and each step runs the top layers on it: every epoch
after the first skips the lower layers' forward, and no epoch runs their backward (the gradient stops
at the lowest adapter in any case).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

# Examples per batch when the frozen layers' output is computed: length-sorted, so padding is small
PREFIX_BATCH = 16
# The most memory the frozen layers' output may take; beyond it (a 7B base on Alpaca's 52,002
# examples would need ~130 GB) the frozen layers run every step instead, still without a backward
FROZEN_STATES_MAX_BYTES = 4 << 30


def decoder_stack(model: Any) -> Any:
    """The decoder stack (the module holding `layers`) of a causal LM, PEFT-wrapped or not."""
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    return causal_lm.base_model


def top_layers(lora_layers: int, num_layers: int) -> list[int]:
    """The indices of the top `lora_layers` of `num_layers` decoder layers."""
    return list(range(num_layers - lora_layers, num_layers))


def decoder_linear_names(model: Any) -> list[str]:
    """The leaf names of the linear layers inside the decoder layers (q_proj, ..., down_proj): what
    PEFT's "all-linear" targets there."""
    import torch

    layer = decoder_stack(model).layers[0]
    return sorted({name.rsplit(".", 1)[-1] for name, module in layer.named_modules() if isinstance(module, torch.nn.Linear)})


@contextlib.contextmanager
def only_layers(stack: Any, start: int, stop: int | None = None) -> Iterator[None]:
    """Run `stack` with its layers start..stop-1 only; all are put back on exit (a saved adapter keeps
    their indices)."""
    layers = stack.layers
    stack.layers = layers[start:stop]
    try:
        yield
    finally:
        stack.layers = layers


def frozen_states(
    model: Any, examples: Iterable[Sequence[int]], frozen: int, bf16: bool
) -> dict[tuple[int, ...], Any] | None:
    """The output of the embeddings and the lowest `frozen` decoder layers for each example (token ids),
    keyed by its ids: (tokens, hidden) in the residual stream's dtype; None where it would take more
    than `FROZEN_STATES_MAX_BYTES`."""
    import torch

    from saftool.console import info

    stack = decoder_stack(model)
    unique = sorted({tuple(ids) for ids in examples}, key=len)
    size = sum(map(len, unique)) * stack.embed_tokens.embedding_dim * torch.finfo(stack.embed_tokens.weight.dtype).bits // 8
    if size > FROZEN_STATES_MAX_BYTES:
        info(f"the {frozen} frozen layers' output would take {size / 2**30:.1f} GiB: they run at every step")
        return None
    info(f"computing the {frozen} frozen layers' output for {len(unique)} examples, once")
    states: dict[tuple[int, ...], Any] = {}
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16), only_layers(stack, 0, frozen):
        for start in range(0, len(unique), PREFIX_BATCH):
            batch = unique[start : start + PREFIX_BATCH]
            width = len(batch[-1])
            input_ids = torch.zeros((len(batch), width), dtype=torch.long)
            for row, ids in enumerate(batch):
                input_ids[row, : len(ids)] = torch.tensor(ids)
            # padded on the right: causal attention keeps every real position from seeing the padding
            hidden = _pre_norm_states(stack, input_ids)
            for row, ids in enumerate(batch):
                states[ids] = hidden[row, : len(ids)].clone()
    return states


def _pre_norm_states(stack: Any, input_ids: Any) -> Any:
    """The residual stream after `stack`'s layers, before its final norm."""
    import torch

    norm = stack.norm
    stack.norm = torch.nn.Identity()
    try:
        return stack(input_ids=input_ids, use_cache=False).last_hidden_state
    finally:
        stack.norm = norm
