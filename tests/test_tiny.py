from __future__ import annotations

from saftool.tiny import TinySpec, build_base, train_tokenizer


def test_build_base_saves_a_from_pretrained_directory(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = TinySpec(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, vocab_size=300)
    out = build_base(["Reverse the word apple.\nelppa", "What is 2 plus 3?\n5"] * 20, spec, tmp_path / "base")
    assert (out / "model.safetensors").is_file()
    assert not list(out.glob("*.bin"))
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.model_type == "llama" and model.config.hidden_size == 32
    assert tok.eos_token == "</s>" and tok.pad_token == "<pad>"
    assert tok.decode(tok("Reverse the word apple.")["input_ids"]) == "Reverse the word apple."
    assert len(tok) <= 300


def test_tokenizer_splits_off_first_letters_so_a_word_keeps_its_rest_anywhere():
    tok = train_tokenizer(
        ["Repeat the word apple two times.\napple apple", "Join apple and pear.\napple-pear"] * 20, 300
    )
    alone = tok.tokenize("apple")
    in_prompt = tok.tokenize("Repeat the word apple.")
    assert alone[0] == "a"
    at = in_prompt.index("Ġa")  # the space rides on the first letter (byte-level shows it as Ġ)
    assert in_prompt[at + 1 : at + len(alone)] == alone[1:]
    assert tok.decode(tok("Repeat the word apple.")["input_ids"]) == "Repeat the word apple."
