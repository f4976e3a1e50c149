from __future__ import annotations

import pytest

from saftool.presets import resolve_config
from saftool.train.checks import check_base_model
from saftool.train.trainer import default_bf16, make_trainer
from tests.modelfix import mix_items


def test_chat_template_loss_covers_exactly_the_assistant_tokens(chat_base, tmp_path):
    """TRL renders each example with the tokenizer's own (Llama-3) template; the labels keep the
    assistant's answer and its <|eot_id|>, never the system, user or header tokens. On the CPU the lean
    collator packs several examples to a row: each is read back from where its position ids restart."""
    config = resolve_config(base_model=str(chat_base), device="cpu", template="chat", system="Be brief.", effective_batch=4)
    tokenizer = check_base_model(config, str(chat_base))
    items = mix_items(6, 2)
    trainer = make_trainer(config, items, str(chat_base), tmp_path / "ckpt", False, 1, 1, None, tokenizer)
    expected = set()
    for item in items:
        messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": item.instruction}]
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        full = tokenizer.apply_chat_template([*messages, {"role": "assistant", "content": item.output}], tokenize=False)
        assert full.startswith(prompt)
        expected.add(full[len(prompt) :])
    seen = set()
    for batch in trainer.get_train_dataloader():
        for row_ids, row_labels, pos in zip(batch["input_ids"], batch["labels"], batch["position_ids"]):
            starts = [*(pos == 0).nonzero().flatten().tolist(), len(row_ids)]
            for a, b in zip(starts, starts[1:]):
                ids, labels = row_ids[a:b], row_labels[a:b]
                if bool((ids == tokenizer.pad_token_id).all()):
                    continue  # the row's padding
                answer = tokenizer.decode(ids[labels != -100])
                prompt = tokenizer.decode(ids[(labels == -100) & (ids != tokenizer.pad_token_id)])
                assert prompt.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n") and "Be brief." in prompt
                seen.add(answer)
    assert seen == expected and all(a.endswith("<|eot_id|>") for a in seen)


@pytest.mark.parametrize("layout", ["packed", "padded"])
def test_lean_lora_loss_equals_the_models_own(smoke_base, tmp_path, monkeypatch, layout):
    """One-process CPU LoRA takes the lean path: examples packed into rows (or, where they are of
    similar length, one padded row each), the LM head on answer tokens only. Its loss equals the
    model's own (every position scored) on TRL's padded batch of the same examples."""
    import torch
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from saftool.train import collate

    monkeypatch.setattr(collate, "PAD_RATHER_THAN_PACK", 0.0 if layout == "packed" else 100.0)
    config = resolve_config(
        "smoke", method="lora", base_model=str(smoke_base), lora_target_modules=("q_proj", "v_proj"),
        lora_dropout=0.0, bf16=False,
    )
    trainer = make_trainer(config, mix_items()[:40], str(smoke_base), tmp_path / "ckpt", False, 1, 1)
    assert type(trainer).__name__ == "LeanSFTTrainer"
    examples = [trainer.train_dataset[i] for i in range(8)]
    padded = DataCollatorForLanguageModeling(pad_token_id=trainer.processing_class.pad_token_id)(examples)
    batch = trainer.data_collator(examples)
    if layout == "packed":
        assert batch["input_ids"].shape[0] < 8  # rows hold several examples
    else:
        assert batch["input_ids"].shape[0] == 8 and bool((batch["position_ids"].diff(dim=1) == 1).all())
    with torch.no_grad():
        lean = trainer.compute_loss(trainer.model, dict(batch))
        reference = trainer.model(**padded).loss
    assert torch.allclose(lean, reference, atol=1e-5), (lean, reference)


def test_bf16_autocast_default(monkeypatch):
    """bf16 by default on a CPU with bf16 hardware for a base model, never for the tool-built tiny ones."""
    from saftool import devices

    real = resolve_config(None, base_model="some/base")
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: True)
    assert default_bf16(real, use_cuda=False) and not default_bf16(resolve_config("tiny"), use_cuda=False)
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: False)
    assert not default_bf16(real, use_cuda=False)


@pytest.mark.parametrize("layout,fits", [("packed", True), ("padded", True), ("padded", False)])
def test_top_layer_lora_on_frozen_states_trains_as_the_whole_model_does(smoke_base, tmp_path, monkeypatch, layout, fits):
    """With LoRA on the top layer only (`lora_layers`), the lean path computes the frozen layer's
    output once per example and runs the top layer on it: the loss and every adapter gradient equal
    the whole model's on TRL's padded batch, and the model has all its layers again afterwards. Where
    that output would not fit its memory budget, the batches carry none and the whole model runs."""
    import torch
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from saftool.train import collate, frozen_prefix
    from saftool.train.frozen_prefix import decoder_stack

    monkeypatch.setattr(collate, "PAD_RATHER_THAN_PACK", 0.0 if layout == "packed" else 100.0)
    if not fits:
        monkeypatch.setattr(frozen_prefix, "FROZEN_STATES_MAX_BYTES", 1000)
    config = resolve_config(
        "smoke", method="lora", base_model=str(smoke_base), lora_target_modules=("all-linear",), lora_layers=1,
        lora_dropout=0.0, bf16=False,
    )
    trainer = make_trainer(config, mix_items()[:40], str(smoke_base), tmp_path / "ckpt", False, 1, 1)
    adapters = {name: p for name, p in trainer.model.named_parameters() if p.requires_grad}
    assert adapters and all(".layers.1." in name for name in adapters)  # the smoke base has layers 0 and 1
    assert {name.split(".layers.1.")[1].split(".lora_")[0] for name in adapters} == {
        "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj",
    }
    for p in adapters.values():  # LoRA's B starts at zero; give A a gradient too
        torch.nn.init.normal_(p, std=0.1)
    examples = [trainer.train_dataset[i] for i in range(8)]
    batch = trainer.data_collator(examples)
    if fits:
        assert batch["inputs_embeds"].shape == (*batch["input_ids"].shape, 32)
    else:
        assert "inputs_embeds" not in batch

    def loss_and_grads(loss_fn):
        trainer.model.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss.detach(), {name: p.grad.clone() for name, p in adapters.items()}

    lean, lean_grads = loss_and_grads(lambda: trainer.compute_loss(trainer.model, dict(batch)))
    padded = DataCollatorForLanguageModeling(pad_token_id=trainer.processing_class.pad_token_id)(examples)
    reference, reference_grads = loss_and_grads(lambda: trainer.model(**padded).loss)
    assert torch.allclose(lean, reference, atol=1e-5), (lean, reference)
    for name, grad in reference_grads.items():
        assert grad.abs().sum() > 0 and torch.allclose(lean_grads[name], grad, atol=1e-5), name
    assert len(decoder_stack(trainer.model).layers) == 2


def test_lora_layers_beyond_the_base_is_a_usage_error(smoke_base):
    from saftool.errors import UsageError

    config = resolve_config("smoke", method="lora", base_model=str(smoke_base), lora_layers=3)
    with pytest.raises(UsageError, match="--lora-layers 3: .* has 2 decoder layers"):
        check_base_model(config, str(smoke_base))
