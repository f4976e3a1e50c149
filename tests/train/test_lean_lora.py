from __future__ import annotations

from saftool.presets import resolve_config
from saftool.train.lean_lora import dropped_positions, sparse_dropout_class
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


def test_sparse_dropout_scales_kept_inputs_and_their_gradients():
    import torch

    torch.manual_seed(0)
    dropout = sparse_dropout_class()(0.25)
    x = torch.randn(64, 32, requires_grad=True)
    y = dropout(x)
    kept = y != 0
    assert 0.15 < 1 - kept.double().mean() < 0.35
    assert torch.allclose(y[kept], x[kept] / 0.75)
    y.backward(torch.ones_like(y))
    assert torch.equal(x.grad, kept.float() / 0.75)
    dropout.eval()
    assert dropout(x) is x


def test_lean_bf16_lora_loss_matches_autocast_peft(smoke_base, tmp_path):
    """The lean path swaps LoRA's dropout and keeps bf16 inputs in bf16 under its own autocast: its loss
    equals PEFT's own forward under bf16 autocast (dropout off, so both compute the same function),
    and its dropout layers are the sparse ones once dropout is on."""
    import torch

    config = resolve_config("smoke", method="lora", base_model=str(smoke_base), lora_dropout=0.0, bf16=True)
    trainer = make_trainer(config, mix_items()[:16], str(smoke_base), tmp_path / "a", False, 1, 1)
    model = trainer.model
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:  # B starts at zero: make the adapter count
                param.normal_(0, 0.05)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(8)])
    with torch.no_grad():
        lean = trainer.compute_loss(model, dict(batch))
        for module in model.modules():
            if hasattr(module, "cast_input_dtype_enabled"):
                module.cast_input_dtype_enabled = True  # PEFT's default
        with torch.autocast("cpu", dtype=torch.bfloat16):
            reference = model(**batch).loss
    assert torch.allclose(lean, reference.float(), rtol=2e-2), (lean, reference)

    dropped = resolve_config("smoke", method="lora", base_model=str(smoke_base), lora_dropout=0.05, bf16=True)
    trainer = make_trainer(dropped, mix_items()[:16], str(smoke_base), tmp_path / "b", False, 1, 1)
    kinds = {
        type(d).__name__
        for m in trainer.model.modules()
        if hasattr(m, "lora_dropout")
        for d in m.lora_dropout.values()
    }
    assert kinds == {"SparseDropout"}
