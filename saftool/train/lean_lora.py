"""LoRA layers made cheaper for the lean CPU path, without changing what they compute.

PEFT's LoRA linear computes `base(x) + lora_B(lora_A(dropout(x))) * scaling` as separate ops, and
on a CPU each op is a pass over memory. A profile of one LoRA step on SmolLM2-135M (all linear
layers, bf16 autocast, 2 threads, length-grouped batches of 8) had 30% of the time in the matrix
products of the base and 70% around them; of that:

* dropout draws one random number per input element, and torch's CPU generator is serial: 4 ms
  to drop 5% of a 1,000 x 576 input, seven times the 576 x 576 bf16 product it feeds; the dropped
  copy of the input is then one more pass, and its backward another;
* LoRA's (tokens x out) product is written, scaled in a second pass and added in a third, forward
  and backward alike (15% of the step in `mul`, 10% in `add`);
* PEFT casts each bf16 input to the adapter's float32 before dropout, and autocast casts it back to
  bf16 for the product: two copies of every input for nothing.

`fused_lora_forward` computes the same function in one autograd node: the base product, then the
LoRA product added into it in place (`addmm_`, the scaling as its alpha). Dropout draws only the
dropped positions, as gaps between them (`dropped_positions`: each element is still dropped
independently with probability p), zeroes them in one copy of the input, and scales the small
(tokens x r) product instead of the input; the backward adds LoRA's share into the input's gradient
in place and puts the dropped elements' base-only gradient back. (Subtracting each dropped
element's share from the product of the whole input instead of copying it was 1.5x slower:
`index_add_` of short rows is serial.) Products run in the autocast dtype where autocast is on (as
PEFT's do under it), else in the base weight's.
"""

from __future__ import annotations

import functools
import math
from typing import Any


def dropped_positions(numel: int, p: float):
    """Flat indices of the elements a dropout with probability `p` drops in a tensor of `numel`:
    a Bernoulli(p) process over 0..numel-1, drawn as the geometric gaps between its successes."""
    import torch

    if p <= 0 or numel == 0:
        return torch.empty(0, dtype=torch.long)
    chunks = []
    end = -1  # the last position drawn so far
    while end < numel - 1:
        expected = (numel - 1 - end) * p
        # enough gaps to pass the end nearly always (mean + 6 standard deviations); else draw again
        k = max(16, int(expected + 6 * math.sqrt(expected + 1) + 16))
        # geometric gaps by inversion, 1 + floor(log(U) / log(1 - p)): a vectorised log is ~8x
        # faster than torch's geometric_, which draws one sample at a time
        uniform = 1.0 - torch.rand(k, dtype=torch.float64)  # in (0, 1]: the log stays finite
        gaps = (uniform.log_() / math.log1p(-p)).long() + 1
        positions = end + torch.cumsum(gaps, 0)
        chunks.append(positions)
        end = int(positions[-1])
    positions = torch.cat(chunks)
    return positions[positions < numel]


@functools.cache
def lora_linear_function():
    """The autograd function of one LoRA linear: y = x W.T + b + scaling * dropout(x) A.T B.T.

    `apply(x, weight, bias, lora_a, lora_b, scaling, p)`: x is (tokens, in) in the compute dtype,
    weight and bias the frozen base's in that dtype, lora_a (r, in) and lora_b (out, r) the trainable
    float32 parameters, p the dropout probability (0 in eval mode).
    """
    import torch

    class LoraLinearFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, weight, bias, lora_a, lora_b, scaling: float, p: float):
            a, b = lora_a.to(x.dtype), lora_b.to(x.dtype)
            dropped = dropped_positions(x.numel(), p)
            kept = x
            if dropped.numel():
                kept = x.clone()
                kept.view(-1)[dropped] = 0
            # dropout's 1 / (1 - p) scales the (tokens, r) product, not the (tokens, in) input
            h = (kept @ a.t()).mul_(1.0 / (1.0 - p))
            out = torch.nn.functional.linear(x, weight, bias)
            out.addmm_(h, b.t(), alpha=scaling)
            ctx.save_for_backward(kept, weight, a, b, h, dropped)
            ctx.scaling, ctx.p = scaling, p
            ctx.dtypes = (lora_a.dtype, lora_b.dtype)
            return out

        @staticmethod
        def backward(ctx, grad):
            kept, weight, a, b, h, dropped = ctx.saved_tensors
            grad = grad.contiguous()
            scale = ctx.scaling / (1.0 - ctx.p)  # LoRA's scaling and dropout's
            grad_h = grad @ b  # (tokens, r)
            grad_x = grad_a = grad_b = None
            if ctx.needs_input_grad[0]:
                grad_x = grad @ weight
                base_only = grad_x.view(-1)[dropped]  # a dropped element reached the adapter not at all
                grad_x.addmm_(grad_h, a, alpha=scale)
                grad_x.view(-1)[dropped] = base_only
            if ctx.needs_input_grad[3]:
                grad_a = (grad_h.t() @ kept).to(ctx.dtypes[0]) * scale  # scaled in the parameter's dtype
            if ctx.needs_input_grad[4]:
                grad_b = (grad.t() @ h).to(ctx.dtypes[1]) * ctx.scaling
            return grad_x, None, None, grad_a, grad_b, None, None

    return LoraLinearFunction


def fused_lora_forward(module: Any, x, *args: Any, **kwargs: Any):
    """A PEFT LoRA `Linear`'s forward through `lora_linear_function`, where it computes what PEFT's
    would: one active adapter on a plain linear base, unmerged, no per-call adapter names; else
    PEFT's own forward."""
    import torch

    active = [name for name in module.active_adapters if name in module.lora_A]
    if args or kwargs or module.disable_adapters or module.merged or len(active) != 1:
        return type(module).forward(module, x, *args, **kwargs)
    (name,) = active
    base = module.base_layer
    dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else base.weight.dtype
    dropout = module.lora_dropout[name]
    p = dropout.p if isinstance(dropout, torch.nn.Dropout) and dropout.training else 0.0
    bias = None if base.bias is None else base.bias.to(dtype)
    with torch.autocast("cpu", enabled=False):  # the function casts for itself
        out = lora_linear_function().apply(
            x.reshape(-1, x.shape[-1]).to(dtype),
            base.weight.to(dtype),
            bias,
            module.lora_A[name].weight,
            module.lora_B[name].weight,
            module.scaling[name],
            p,
        )
    return out.view(*x.shape[:-1], out.shape[-1])


def lean_lora_layers(model: Any) -> None:
    """Give each plain LoRA linear of `model` (a linear base, no LoRA variant such as DoRA) the fused
    forward; the others keep PEFT's."""
    import torch
    from peft.tuners.lora import Linear

    for module in model.modules():
        if type(module) is Linear and isinstance(module.base_layer, torch.nn.Linear) and not module.lora_variant:
            module.forward = functools.partial(fused_lora_forward, module)
