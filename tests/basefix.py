"""Random-weight base models of real architectures on disk, with tokenizers built in code, as
`--base-model` stand-ins: hidden size 64 and 2 layers, so they build in well under a second."""

from __future__ import annotations

from pathlib import Path

from saftool.tiny import train_tokenizer
from saftool.train import training_texts
from tests.modelfix import mix_items

# Meta-Llama-3-8B-Instruct's chat template, as its tokenizer_config.json ships it
LLAMA3_CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
LLAMA3_SPECIAL = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]


def build_random_base(folder: Path, arch: str = "llama", *, chat: bool = False, seed: int = 0) -> Path:
    """A random-weight `arch` model (AutoConfig.for_model) and a byte-level BPE tokenizer trained on
    the test mix; `chat` gives it Llama-3's special tokens and chat template (EOS = <|eot_id|>)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    tokenizer = train_tokenizer(training_texts(mix_items()), 512)
    if chat:
        tokenizer.add_special_tokens({"additional_special_tokens": LLAMA3_SPECIAL})
        tokenizer.bos_token, tokenizer.eos_token = "<|begin_of_text|>", "<|eot_id|>"
        tokenizer.chat_template = LLAMA3_CHAT_TEMPLATE
    shape = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)
    if arch == "gpt2":
        shape = dict(n_embd=64, n_inner=128, n_layer=2, n_head=4)
    config = AutoConfig.for_model(
        arch,
        vocab_size=len(tokenizer) + 8,  # real models carry spare embedding rows
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **shape,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_small_update_adapter(root: Path) -> Path:
    """A LoRA adapter (q_proj, v_proj) on a random-weight Llama in `root/base`, whose update is about
    0.04% of the weights (a tenth of a bf16 step), as a short LoRA run leaves it; saved with its
    tokenizer, as `train` saves one. Returns the adapter directory."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = build_random_base(root / "base")
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base),
        LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
    )
    torch.manual_seed(1)
    for name, param in model.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0, 2e-5)
    model.save_pretrained(root / "adapter")
    AutoTokenizer.from_pretrained(base).save_pretrained(root / "adapter")
    return root / "adapter"
