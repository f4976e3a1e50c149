"""The default backend: transformers `generate` in length-sorted, left-padded batches.

Prompts are sorted by token length (longest first, so memory peaks in the first batch) and cut into
batches of `batch_size`; left padding keeps every prompt's last token at the end of its row, and
position ids count only real tokens, so a batched greedy answer equals the one-prompt answer.
Greedy decoding runs its own loop over the KV cache that drops each row from the batch once it has
produced EOS: a batch costs what its live rows cost, not what its longest answer costs (answers
here range from one token to `max_new_tokens`). Sampling goes through `generate`. A PEFT adapter
directory is loaded onto the base it names and merged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

from saftool.errors import SaftoolError
from saftool.records import GenerationConfig
from saftool.runtimes import Completion, RuntimeOptions


def check_model_dir(path: Path) -> None:
    """A model directory must hold safetensors weights and a config (or a PEFT adapter)."""
    if (path / "adapter_config.json").is_file():
        if not (path / "adapter_model.safetensors").is_file():
            raise SaftoolError(f"adapter directory {path} holds no adapter_model.safetensors")
        return
    if not (path / "config.json").is_file():
        raise SaftoolError(f"model directory {path} holds no config.json")
    if not any(path.glob("*.safetensors")):
        raise SaftoolError(f"model directory {path} holds no .safetensors weights (saftool loads only safetensors)")


def adapter_base(path: Path) -> str | None:
    """The base model a PEFT adapter directory names, or None for a full model."""
    config = path / "adapter_config.json"
    if not config.is_file():
        return None
    return json.loads(config.read_text(encoding="utf-8"))["base_model_name_or_path"]


class HFRuntime:
    name = "hf"
    default_batch_size = 64

    def __init__(self, model: str, options: RuntimeOptions):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from saftool.train import resolve_device

        path = Path(model)
        check_model_dir(path)
        use_cuda = resolve_device(options.device)
        dtype = torch.bfloat16 if use_cuda and torch.cuda.is_bf16_supported() else torch.float32
        self.batch_size = options.batch_size or self.default_batch_size
        base = adapter_base(path)
        has_tokenizer = (path / "tokenizer_config.json").is_file()
        self.tokenizer = AutoTokenizer.from_pretrained(
            str(path) if has_tokenizer or base is None else base, trust_remote_code=False, padding_side="left"
        )
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        load = {"dtype": dtype, "use_safetensors": True, "trust_remote_code": False}
        if base is None:
            self.model = AutoModelForCausalLM.from_pretrained(str(path), **load)
        else:
            from peft import PeftModel

            base_model = AutoModelForCausalLM.from_pretrained(base, **load)
            self.model = PeftModel.from_pretrained(base_model, str(path)).merge_and_unload()
        self.device = torch.device("cuda" if use_cuda else "cpu")
        self.model.to(self.device).eval()

    def generate(self, prompts: Sequence[str], generation: GenerationConfig) -> Iterator[tuple[int, Completion]]:
        import torch
        from transformers import GenerationConfig as HFGenerationConfig

        tok = self.tokenizer
        sampling = {"temperature": generation.temperature, "top_p": generation.top_p} if generation.do_sample else {}
        config = HFGenerationConfig(
            max_new_tokens=generation.max_new_tokens,
            do_sample=generation.do_sample,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
            **sampling,
        )
        lengths = [len(ids) for ids in tok(list(prompts))["input_ids"]]
        order = sorted(range(len(prompts)), key=lambda i: -lengths[i])
        eos = tok.eos_token_id
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            enc = tok([prompts[i] for i in idx], return_tensors="pt", padding=True).to(self.device)
            with torch.inference_mode():
                if generation.do_sample:
                    out = self.model.generate(**enc, generation_config=config)
                    new = out[:, enc["input_ids"].shape[1] :].tolist()
                else:
                    new = self._greedy(enc["input_ids"], enc["attention_mask"], generation.max_new_tokens, eos)
            for i, ids in zip(idx, new):
                n = ids.index(eos) + 1 if eos in ids else len(ids)
                text = tok.decode(ids[:n], skip_special_tokens=True).strip()
                yield i, Completion(text, lengths[i], n)

    def _greedy(self, input_ids, attention_mask, max_new_tokens: int, eos: int) -> list[list[int]]:
        """Greedy decoding of a left-padded batch; rows leave the batch (and the cache) at EOS."""
        import torch
        from transformers import DynamicCache

        cache = DynamicCache(config=self.model.config)
        positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=positions,
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        alive = torch.arange(input_ids.shape[0], device=input_ids.device)
        last = positions[:, -1]
        mask = attention_mask
        tokens = out.logits[:, -1].argmax(-1)
        produced: list[list[int]] = [[] for _ in range(input_ids.shape[0])]
        for step in range(max_new_tokens):
            for row, token in zip(alive.tolist(), tokens.tolist()):
                produced[row].append(token)
            if step == max_new_tokens - 1:
                break
            running = tokens != eos
            if not bool(running.all()):
                keep = running.nonzero().squeeze(1)
                if keep.numel() == 0:
                    break
                cache.batch_select_indices(keep)
                alive, tokens, mask, last = alive[keep], tokens[keep], mask[keep], last[keep]
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
            last = last + 1
            out = self.model(
                input_ids=tokens[:, None],
                attention_mask=mask,
                position_ids=last[:, None],
                cache=cache,
                use_cache=True,
            )
            tokens = out.logits[:, -1].argmax(-1)
        return produced
