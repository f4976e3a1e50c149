"""Random-weight models of the architectures people point `infer` at, with tokenizers that behave like
the real ones, built in code (hidden size 64, 2 layers: each builds in well under a second).

| name    | architecture                      | tokenizer as the real one                                   |
|---------|-----------------------------------|-------------------------------------------------------------|
| llama2  | Llama, 96 positions               | BOS added, no pad, no chat template (Llama-2-7b-hf)         |
| llama3  | Llama, GQA, llama3 rope scaling   | Meta-Llama-3-8B-Instruct: its chat template, EOS            |
|         |                                   | <|end_of_text|>, generation_config stops [EOS, <|eot_id|>]  |
| mistral | Mistral, GQA                      | BOS added, [INST] chat template that refuses a system turn  |
| qwen2   | Qwen2, q/k/v biases, padded vocab | no BOS, ChatML with a default system turn, EOS <|im_end|>,  |
|         |                                   | stops [<|im_end|>, <|endoftext|>] (Qwen2.5-Instruct)       |
| gemma2  | Gemma-2 (soft-capping, tied)      | <bos> added, turn template refusing a system turn, stops    |
|         |                                   | [<eos>, <end_of_turn>] (gemma-2-it)                         |
| gpt2    | GPT-2, 128 positions, tied        | no BOS, no pad; a second stop that is an ordinary token     |

Every embedding has spare rows past the tokenizer (real models pad their vocabulary). A random model
rarely says its stop token, so each gets taught to: the output row of its second stop token is set
to just above the row of a token it says mid-answer, so greedy answers end there, mid-way, as real
answers do (GPT-2's second stop is an ordinary word, " the").
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from saftool.template import format_prompt
from saftool.train import training_texts
from tests.basefix import LLAMA3_CHAT_TEMPLATE
from tests.modelfix import eval_items, mix_items

MISTRAL_CHAT_TEMPLATE = (  # Mistral-7B-Instruct-v0.2's
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)
QWEN2_CHAT_TEMPLATE = (  # Qwen2.5-Instruct's, without its tool-calling branches
    "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}{%- for message in messages %}{%- if not (message.role == 'system' and loop.first) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
GEMMA2_CHAT_TEMPLATE = (  # gemma-2-9b-it's
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}"
)
SHAPE = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)


@dataclass(frozen=True)
class Arch:
    name: str
    model_type: str
    specials: tuple[str, ...]
    bos: str | None  # added in front of every text by the tokenizer
    eos: str
    pad: str | None
    extra_stop: str | None  # the generation_config's second stop token (None: an ordinary token)
    chat_template: str | None
    config: dict


ARCHS = {
    a.name: a
    for a in [
        Arch(
            "llama2",
            "llama",
            ("<unk>", "<s>", "</s>"),
            "<s>",
            "</s>",
            None,
            "",
            None,
            dict(SHAPE, max_position_embeddings=96),
        ),
        Arch(
            "llama3",
            "llama",
            (
                "<|begin_of_text|>",
                "<|end_of_text|>",
                "<|start_header_id|>",
                "<|end_header_id|>",
                "<|eot_id|>",
            ),
            "<|begin_of_text|>",
            "<|end_of_text|>",
            None,
            "<|eot_id|>",
            LLAMA3_CHAT_TEMPLATE,
            dict(
                SHAPE,
                num_key_value_heads=2,
                max_position_embeddings=512,
                rope_theta=500000.0,
                rope_scaling={
                    "rope_type": "llama3",
                    "factor": 8.0,
                    "low_freq_factor": 1.0,
                    "high_freq_factor": 4.0,
                    "original_max_position_embeddings": 64,
                },
            ),
        ),
        Arch(
            "mistral",
            "mistral",
            ("<unk>", "<s>", "</s>"),
            "<s>",
            "</s>",
            None,
            "",
            MISTRAL_CHAT_TEMPLATE,
            dict(SHAPE, num_key_value_heads=2, max_position_embeddings=512, sliding_window=None),
        ),
        Arch(
            "qwen2",
            "qwen2",
            ("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
            None,
            "<|im_end|>",
            "<|endoftext|>",
            "<|endoftext|>",
            QWEN2_CHAT_TEMPLATE,
            dict(SHAPE, num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=False),
        ),
        Arch(
            "gemma2",
            "gemma2",
            ("<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"),
            "<bos>",
            "<eos>",
            "<pad>",
            "<end_of_turn>",
            GEMMA2_CHAT_TEMPLATE,
            dict(
                SHAPE,
                num_key_value_heads=2,
                head_dim=16,
                query_pre_attn_scalar=16,
                max_position_embeddings=512,
            ),
        ),
        Arch(
            "gpt2",
            "gpt2",
            ("<|endoftext|>",),
            None,
            "<|endoftext|>",
            None,
            None,
            None,
            dict(n_embd=64, n_inner=128, n_layer=2, n_head=4, n_positions=128),
        ),
    ]
}


def corpus() -> list[str]:
    items = eval_items(12)
    return [*training_texts(mix_items()), *(format_prompt(i.instruction, i.input) for i in items)]


def build_tokenizer(arch: Arch):
    """A byte-level BPE tokenizer with `arch`'s special tokens, BOS rule and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=list(arch.specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer)
    if arch.bos:
        bos_id = tok.token_to_id(arch.bos)
        tok.post_processor = processors.TemplateProcessing(
            single=f"{arch.bos} $A", pair=f"{arch.bos} $A {arch.bos} $B", special_tokens=[(arch.bos, bos_id)]
        )
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=arch.bos,
        eos_token=arch.eos,
        pad_token=arch.pad,
        unk_token="<unk>" if "<unk>" in arch.specials else None,
    )
    if arch.chat_template:
        wrapped.chat_template = arch.chat_template
    return wrapped


def build_model(arch_name: str, folder: Path) -> Path:
    """`arch_name`'s model and tokenizer saved in `folder`, taught to stop mid-answer (see the module doc)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    arch = ARCHS[arch_name]
    folder.mkdir(parents=True, exist_ok=True)
    build_tokenizer(arch).save_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)  # as the model's own class loads it (Qwen2's adds a pad)
    ids = {name: tok.convert_tokens_to_ids(name) for name in arch.specials}
    config = AutoConfig.for_model(
        arch.model_type,
        vocab_size=len(tok) + 13,  # spare rows past the tokenizer, as in real checkpoints
        bos_token_id=ids.get(arch.bos) if arch.bos else ids[arch.eos],
        eos_token_id=ids[arch.eos],
        pad_token_id=tok.pad_token_id,
        **arch.config,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    said = _said_mid_answer(model, tok, arch, config.max_position_embeddings)
    if arch.extra_stop == "":
        stops = ids[arch.eos]  # one stop, an int, as Llama-2 and Mistral write it
    else:
        # the second stop: a special token, or (GPT-2) an ordinary word, taught to come mid-answer
        second = ids[arch.extra_stop] if arch.extra_stop else tok(" the")["input_ids"][0]
        with torch.no_grad():
            out = model.get_output_embeddings().weight
            out[second] = out[said] * 1.05
        stops = [ids[arch.eos], second]
    model.generation_config.eos_token_id = stops
    model.generation_config.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else ids[arch.eos]
    model.save_pretrained(folder)
    return folder


def _said_mid_answer(model, tok, arch: Arch, context: int) -> int:
    """A token the model says often after the first steps of its answers to the test prompts (in the
    arch's template, as the conformance tests ask), never in their first two."""
    import torch

    from saftool.template import chat_messages

    early, late = set(), Counter()
    for item in eval_items(6)[:7]:
        if arch.chat_template:
            messages = chat_messages(item.instruction, item.input)
            ids = tok.apply_chat_template(messages, add_generation_prompt=True)["input_ids"]
        else:
            ids = tok(format_prompt(item.instruction, item.input))["input_ids"]
        if len(ids) + 12 > context:
            continue
        with torch.inference_mode():
            new = model.generate(
                torch.tensor([ids]), max_new_tokens=12, do_sample=False, pad_token_id=0, eos_token_id=None
            )
        answer = new[0, len(ids) :].tolist()
        early.update(answer[:2])
        late.update(answer[2:])
    return next((t for t, _ in late.most_common() if t not in early), late.most_common(1)[0][0])
