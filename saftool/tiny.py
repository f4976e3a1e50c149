"""A small Llama the tool builds itself, so the whole pipeline runs offline on a CPU.

`build_base` trains a byte-level BPE tokenizer on the training texts (prompts in the Alpaca
template plus answers), makes a randomly initialised `LlamaForCausalLM` of the given shape and
saves both as an ordinary Hugging Face directory (safetensors weights, `tokenizer.json`), so
`AutoModelForCausalLM.from_pretrained` and `AutoTokenizer.from_pretrained` load it like any hub
model.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from saftool.template import PROMPT_NO_INPUT, PROMPT_WITH_INPUT

PAD, BOS, EOS = "<pad>", "<s>", "</s>"


class TinySpec(BaseModel):
    """Shape of a tool-built Llama."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hidden_size: int = Field(128, description="Width of the residual stream.")
    intermediate_size: int = Field(384, description="Width of the SwiGLU MLP.")
    num_hidden_layers: int = Field(4, description="Decoder layers.")
    num_attention_heads: int = Field(4, description="Attention heads (no grouped-query attention).")
    vocab_size: int = Field(512, description="Byte-level BPE vocabulary size, special tokens included.")
    max_position_embeddings: int = Field(512, description="Longest sequence the rotary embedding is set up for.")
    tie_word_embeddings: bool = Field(True, description="Share the input embedding and the output head.")
    initializer_range: float = Field(
        0.02,
        description="Std of the random init. About 1/sqrt(hidden_size) lets a narrow model learn where to "
        "attend in few steps; the usual 0.02 suits wide ones.",
    )


def template_pieces() -> list[str]:
    """The fixed text of the prompt template, which the tiny tokenizer keeps as single tokens."""
    pieces = set()
    for template in (PROMPT_NO_INPUT, PROMPT_WITH_INPUT):
        for part in template.replace("{input}", "{instruction}").split("{instruction}"):
            if part:
                pieces.add(part)
    return sorted(pieces, key=len, reverse=True)


def train_tokenizer(texts: Iterable[str], vocab_size: int):
    """A byte-level BPE tokenizer trained on `texts`, wrapped for transformers.

    Unlike GPT-2's, it splits each digit and punctuation into pieces of their own and makes a word's
    first letter a token of its own (with the space before it, if any) and the rest BPE pieces (with
    the tiny preset's vocabulary, one piece). The rest is the same tokens wherever the word stands,
    so copying a word is copying tokens; the first-letter tokens are shared by every word, so "the
    first letter of W" is a 26-way map learned from all words rather than one fact per word (held-out
    first_letter: 73-80% with whole words pre-split at vocab 512, 100% with this at 2048;
    bench/tiny_quality.py). The space rides on the first letter, so it costs no position of its own
    (" t" in a prompt and "t" at the start of an answer are one more pair of that map): 27.2 tokens
    per example of the bench mix at vocab 2048, against 31.5 for whole words and a token per space at
    512. Each fixed piece of the prompt template is one token, so the template costs a few positions,
    not dozens.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(
                Regex(r" ?(?<!\p{L})\p{L}|\p{L}+|\p{N}|\s+|[^\s\p{L}\p{N}]+"), behavior="isolated"
            ),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.add_tokens([AddedToken(piece, normalized=False, special=False) for piece in template_pieces()])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, bos_token=BOS, eos_token=EOS, padding_side="right"
    )


def build_base(texts: Iterable[str], spec: TinySpec, out_dir: str | Path, *, seed: int = 0) -> Path:
    """Train a tokenizer on `texts`, make a random-init Llama of shape `spec`, save both to `out_dir`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = train_tokenizer(texts, spec.vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_attention_heads,
        max_position_embeddings=spec.max_position_embeddings,
        tie_word_embeddings=spec.tie_word_embeddings,
        initializer_range=spec.initializer_range,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
