from __future__ import annotations

import json

import pytest

from saftool.adapters import open_model_dir
from saftool.errors import UsageError

TARGET = "model.layers.0.self_attn.q_proj.weight"


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    from tests.basefix import build_small_update_adapter

    return build_small_update_adapter(tmp_path_factory.mktemp("adapters"))


def _fp32_reference(adapter_dir):
    """The base's weights and the adapter's exact update, both in float32."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base_dir = json.loads((adapter_dir / "adapter_config.json").read_text())["base_model_name_or_path"]
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).state_dict()[TARGET]
    merged = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32), str(adapter_dir)
    )
    return base, merged.merge_and_unload().state_dict()[TARGET] - base


def _update_kept(weights, base, delta) -> float:
    """How much of the update `delta` the bf16 `weights` carry over the bf16 base (1: all of it)."""
    import torch

    change = weights.float() - base.to(torch.bfloat16).float()
    return float((change * delta).sum() / (delta * delta).sum())


def test_a_small_lora_update_survives_the_bf16_cast(adapter):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from saftool.adapters import load_causal_lm

    base, delta = _fp32_reference(adapter)
    ours = load_causal_lm(open_model_dir(str(adapter)), torch.bfloat16, torch.device("cpu"))
    weights = ours.state_dict()[TARGET]
    assert weights.dtype == torch.bfloat16 and not hasattr(ours, "peft_config")
    base_dir = json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    naive = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.bfloat16), str(adapter)
    )
    naive_weights = naive.merge_and_unload().state_dict()[TARGET]
    # merged in fp32 then cast: rounding is unbiased, so the update is kept on average (~1.0 here);
    # merged into bf16 weights: most of it rounds away (~0.26 here)
    assert 0.8 < _update_kept(weights, base, delta) < 1.2
    assert _update_kept(naive_weights, base, delta) < 0.5


def test_load_in_4bit_keeps_the_adapter_on_a_4bit_base(adapter):
    pytest.importorskip("bitsandbytes")
    import torch

    from saftool.adapters import load_causal_lm

    model = load_causal_lm(
        open_model_dir(str(adapter)), torch.float32, torch.device("cpu"), load_in_4bit=True
    )
    kinds = {type(m).__name__ for m in model.modules()}
    assert "Linear4bit" in kinds and hasattr(model, "peft_config")  # quantised base, adapter unmerged
    ids = torch.tensor([[1, 5, 9, 12]])
    with torch.inference_mode():
        with_adapter = model(input_ids=ids).logits
        with model.disable_adapter():
            without = model(input_ids=ids).logits
    assert torch.isfinite(with_adapter).all() and not torch.equal(with_adapter, without)


def test_export_writes_a_merged_loadable_model(adapter, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from saftool.adapters import export_merged

    out = export_merged(adapter, tmp_path / "merged", dtype="bfloat16")
    assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(out)
    assert merged.dtype == torch.bfloat16 and AutoTokenizer.from_pretrained(out).eos_token
    base, delta = _fp32_reference(adapter)
    assert torch.equal(merged.state_dict()[TARGET], (base + delta).to(torch.bfloat16))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left
    with pytest.raises(UsageError, match="already exists and is not empty"):
        export_merged(adapter, out)
    with pytest.raises(UsageError, match="unknown --dtype 'int8'"):
        export_merged(adapter, tmp_path / "other", dtype="int8")


def test_infer_answers_with_a_qlora_adapter_on_its_4bit_base(adapter, isolated_store, tmp_path):
    pytest.importorskip("bitsandbytes")
    from saftool.hashing import config_hash
    from saftool.infer import infer
    from saftool.io import read_records
    from saftool.records import GenerationConfig, Response
    from saftool.runtimes import load_runtime
    from saftool.store import Store
    from tests.modelfix import eval_items

    out = tmp_path / "answers.jsonl"
    store = Store(isolated_store)
    infer(
        load_runtime("hf", str(adapter), store=store, device="cpu", load_in_4bit=True),
        items=eval_items(4),
        output=out,
        store=store,
        generation=GenerationConfig(max_new_tokens=4),
    )
    answers = list(read_records(out, Response))
    assert len(answers) == 6 and all(a.completion_tokens >= 1 for a in answers)
    # answers from the 4-bit base are told apart from a merged run's, so a resume never mixes them
    assert {a.generation.weights for a in answers} == {"nf4"}
    assert answers[0].generation_hash != config_hash(answers[0].generation.model_copy(update={"weights": None}))
