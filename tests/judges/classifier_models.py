"""Tokenizers with the real models' special tokens and tiny random-weight classifier models, built in code.

The tokenizers are byte-level (every text round-trips through encode/decode) and, like the Llama and
Mistral tokenizers, add BOS when asked for special tokens, so a prompt that already starts with BOS
would get a second one: the hazard the judge must avoid.
"""

from __future__ import annotations

from pathlib import Path

LLAMA2_SPECIALS = ("<s>", "</s>", "<unk>")  # Llama-2, Mistral, WildGuard
LLAMA3_SPECIALS = (
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
)


def byte_tokenizer(specials: tuple[str, ...], eos: str):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {s: i for i, s in enumerate(specials)}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[ch] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(list(specials))
    bos = specials[0]
    backend.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, vocab[bos])]
    )
    extra = {"unk_token": "<unk>"} if "<unk>" in specials else {}
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=bos, eos_token=eos, **extra)


def llama2_tokenizer():
    return byte_tokenizer(LLAMA2_SPECIALS, "</s>")


def llama3_tokenizer():
    return byte_tokenizer(LLAMA3_SPECIALS, "<|eot_id|>")


def save_classifier(
    path: Path,
    model_type: str,
    tok,
    chat_template: str | None = None,
    seed: int = 0,
    context: int = 8192,
    echo: bool = False,
) -> Path:
    """A random-weight `model_type` (llama, mistral) causal LM with `tok` and a `context`-token window,
    saved as safetensors to `path`. `echo`: no layers and tied embeddings, so each token predicts
    itself and the model repeats its prompt's last token (which tells whose prompt a reply answers)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    if chat_template is not None:
        tok.chat_template = chat_template
    config = AutoConfig.for_model(
        model_type,
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=0 if echo else 2,
        tie_word_embeddings=echo,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=context,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path
