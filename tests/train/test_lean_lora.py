from __future__ import annotations

from saftool.presets import resolve_config
from saftool.train.lean_lora import dropped_positions, lora_linear_function
from saftool.train.trainer import make_trainer
from tests.modelfix import mix_items


def test_dropped_positions_are_a_bernoulli_process():
    """Each position is dropped independently with probability p: the rate, its spread over 1,000
    draws, the rate at the first and last positions, and pairs of neighbours all match."""
    import torch

    torch.manual_seed(0)
    p, n, draws = 0.05, 1000, 1000
    hits = torch.zeros(n)
    counts = []
    for _ in range(draws):
        positions = dropped_positions(n, p)
        assert bool((positions.diff() > 0).all()) and int(positions.min()) >= 0 and int(positions.max()) < n
        hits[positions] += 1
        counts.append(positions.numel())
    counts = torch.tensor(counts, dtype=torch.float64)
    assert abs(counts.mean() - n * p) < 1.0  # standard error 0.22
    assert 0.8 < counts.var() / (n * p * (1 - p)) < 1.2  # a binomial's variance
    assert abs(hits[:50].mean() / draws - p) < 0.01 and abs(hits[-50:].mean() / draws - p) < 0.01
    mask = torch.zeros(200_000, dtype=torch.bool)
    mask[dropped_positions(200_000, p)] = True
    assert abs((mask[:-1] & mask[1:]).double().mean() - p * p) < 0.001  # neighbours independent
    assert dropped_positions(10, 0.0).numel() == 0


def test_fused_lora_linear_computes_peft_lora_with_the_same_dropped_inputs():
    """y = x W.T + b + s * dropout(x) A.T B.T and its gradients for x, A and B, as plain autograd
    computes them with the same dropped positions; nothing for the frozen base; in eval mode (p 0)
    no dropout at all."""
    import torch

    torch.manual_seed(0)
    tokens, n_in, n_out, r, s, p = 40, 24, 16, 4, 2.0, 0.25
    x = torch.randn(tokens, n_in, dtype=torch.float64, requires_grad=True)
    weight, bias = torch.randn(n_out, n_in, dtype=torch.float64), torch.randn(n_out, dtype=torch.float64)
    a = torch.randn(r, n_in, dtype=torch.float64, requires_grad=True)
    b = torch.randn(n_out, r, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(tokens, n_out, dtype=torch.float64)

    def reference(dropped):
        x_ref, a_ref, b_ref = (t.detach().clone().requires_grad_() for t in (x, a, b))
        mask = torch.ones(tokens * n_in, dtype=torch.float64)
        mask[dropped] = 0
        kept = x_ref * mask.view(tokens, n_in) / (1 - p if dropped.numel() else 1)
        y = x_ref @ weight.t() + bias + s * (kept @ a_ref.t()) @ b_ref.t()
        y.backward(upstream)
        return y.detach(), x_ref.grad, a_ref.grad, b_ref.grad

    for prob in (p, 0.0):
        torch.manual_seed(1)
        y = lora_linear_function().apply(x, weight, bias, a, b, s, prob)
        y.backward(upstream)
        torch.manual_seed(1)
        dropped = dropped_positions(x.numel(), prob)
        assert (dropped.numel() > 0) == (prob > 0)
        for got, want in zip((y, x.grad, a.grad, b.grad), reference(dropped)):
            assert torch.allclose(got, want, rtol=1e-10, atol=1e-10)
        x.grad = a.grad = b.grad = None


def test_lean_bf16_lora_loss_and_gradients_match_autocast_peft(smoke_base, tmp_path):
    """The lean path gives every LoRA linear the fused forward: its loss and the adapter's gradients
    equal PEFT's own forward under bf16 autocast (dropout off, so both compute the same function)."""
    import torch
    from peft.tuners.lora import Linear

    config = resolve_config("smoke", method="lora", base_model=str(smoke_base), lora_dropout=0.0, bf16=True)
    trainer = make_trainer(config, mix_items()[:16], str(smoke_base), tmp_path / "a", False, 1, 1)
    model = trainer.model
    lora = [m for m in model.modules() if isinstance(m, Linear)]
    assert lora and all("forward" in vars(m) for m in lora)  # every one fused
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:  # B starts at zero: make the adapter count
                param.normal_(0, 0.05)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(8)])

    def loss_and_grads(loss_of):
        model.zero_grad()
        loss = loss_of()
        loss.backward()
        return loss.detach().float(), [p.grad.clone() for n, p in model.named_parameters() if "lora_" in n]

    lean, lean_grads = loss_and_grads(lambda: trainer.compute_loss(model, dict(batch)))
    for module in lora:
        del module.forward  # PEFT's own
    with torch.autocast("cpu", dtype=torch.bfloat16):
        reference, reference_grads = loss_and_grads(lambda: model(**batch).loss)
    assert torch.allclose(lean, reference, rtol=2e-2), (lean, reference)
    for got, want in zip(lean_grads, reference_grads, strict=True):
        assert torch.allclose(got, want, rtol=0.1, atol=0.1 * float(want.abs().max())), (got, want)
