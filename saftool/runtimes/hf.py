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


PREFILL_GROUP = 16  # prompts per prefill forward in the slot decoder


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
        encoded = self._fit_context(tok(list(prompts))["input_ids"], generation.max_new_tokens)
        lengths = [len(ids) for ids in encoded]
        order = sorted(range(len(prompts)), key=lambda i: -lengths[i])
        eos = tok.eos_token_id
        if not generation.do_sample and _llama_like(self.model):
            for i, ids in self._greedy_slots(encoded, order, generation.max_new_tokens, eos):
                yield i, Completion(tok.decode(ids, skip_special_tokens=True).strip(), lengths[i], len(ids))
            return
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            enc = tok.pad({"input_ids": [encoded[i] for i in idx]}, return_tensors="pt").to(self.device)
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

    def _fit_context(self, encoded: list[list[int]], max_new_tokens: int) -> list[list[int]]:
        """Cut prompts that would not fit the model's context with the answer, keeping their end.

        Some benchmark prompts are far longer than a small model's context (seed-safe holds one of
        12,600 tokens); beyond it positions are untrained and attention cost grows quadratically.
        The end holds the instruction's last words and the template's `### Response:` cue.
        """
        context = getattr(self.model.config, "max_position_embeddings", None)
        if not context:
            return encoded
        limit = max(1, context - max_new_tokens)
        cut = sum(1 for ids in encoded if len(ids) > limit)
        if cut:
            from saftool.console import warn

            warn(f"{cut} prompt(s) longer than the model's context ({context} tokens, {max_new_tokens} kept "
                 f"for the answer): kept their last {limit} tokens")
        return [ids[-limit:] if len(ids) > limit else ids for ids in encoded]

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

    def _greedy_slots(
        self, encoded: list[list[int]], order: list[int], max_new_tokens: int, eos: int
    ) -> Iterator[tuple[int, list[int]]]:
        """Greedy decoding of Llama-family models with continuous batching over a preallocated KV cache.

        `batch_size` slots each hold one prompt's keys and values from position 0 (no padding), in
        buffers sized once for the longest prompt plus `max_new_tokens`. A prompt leaves its slot at
        EOS and is yielded at once; freed slots are refilled from the queue (longest prompts first)
        whenever a quarter of them are free, by one right-padded prefill through the model's own
        forward (causal, so the pads after a prompt never reach it). Each decode step writes one key
        and value per slot at that slot's own position and attends under a length mask, using the
        model's own modules, rotary embedding and SDPA, so the text equals the one-prompt answer.
        Once the queue is empty, the buffers shrink to the live slots when a quarter have finished.
        Buffers start zeroed: the additive mask must never meet NaN garbage. On the bench (tiny model,
        200 prompts, 1 thread) this is 1.25x the generic loop below, mostly from the short prefills.
        """
        import torch
        from transformers import DynamicCache
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

        model, dev = self.model, self.device
        inner, config = model.model, model.config
        layers = inner.layers
        attn0 = layers[0].self_attn
        n_kv = config.num_key_value_heads
        n_rep = config.num_attention_heads // n_kv
        head_dim = attn0.head_dim
        pad = self.tokenizer.pad_token_id
        queue = list(reversed(order))  # pop() takes the longest prompt left
        slots = min(self.batch_size, len(order))
        span = max(len(encoded[i]) for i in order) + max_new_tokens
        dtype = inner.embed_tokens.weight.dtype
        keys = [torch.zeros(slots, n_kv, span, head_dim, dtype=dtype, device=dev) for _ in layers]
        values = [torch.zeros_like(k) for k in keys]
        pos = torch.zeros(slots, dtype=torch.long, device=dev)  # where each slot writes next
        tokens = torch.full((slots,), pad, dtype=torch.long, device=dev)
        owner: list[int | None] = [None] * slots  # prompt index held by each slot
        produced: dict[int, list[int]] = {}
        top = 0  # longest sequence held in any slot, as a Python int (no device sync)
        lens = [0] * slots

        def prefill(take: list[int], into: list[int]) -> list[int]:
            width = max(len(encoded[i]) for i in take)
            ids = torch.full((len(take), width), pad, dtype=torch.long)
            for r, i in enumerate(take):
                ids[r, : len(encoded[i])] = torch.tensor(encoded[i])
            cache = DynamicCache(config=config)
            hidden = inner(input_ids=ids.to(dev), cache=cache, use_cache=True).last_hidden_state
            ends = torch.tensor([len(encoded[i]) - 1 for i in take], device=dev)
            first = model.lm_head(hidden[torch.arange(len(take), device=dev), ends]).argmax(-1)
            where = torch.tensor(into, device=dev)
            for layer, k, v in zip(cache.layers, keys, values):
                k[where, :, :width] = layer.keys
                v[where, :, :width] = layer.values
            pos[where] = ends + 1
            tokens[where] = first
            return first.tolist()

        with torch.inference_mode():
            while True:
                free = [s for s in range(slots) if owner[s] is None]
                if queue and free and (len(free) * 4 >= slots or len(free) == slots):
                    take = [queue.pop() for _ in range(min(len(free), len(queue)))]
                    into = free[: len(take)]
                    firsts = []  # prefill in groups of similar length: less padding, same GEMM efficiency
                    for g in range(0, len(take), PREFILL_GROUP):
                        firsts += prefill(take[g : g + PREFILL_GROUP], into[g : g + PREFILL_GROUP])
                    for s, i, first in zip(into, take, firsts):
                        owner[s], produced[i], lens[s] = i, [first], len(encoded[i])
                        if first == eos or max_new_tokens == 1:
                            owner[s] = None
                            yield i, produced.pop(i)
                live = [s for s in range(slots) if owner[s] is not None]
                if not live:
                    if not queue:
                        return
                    continue
                if not queue and len(live) * 4 <= slots * 3 and len(live) < slots:
                    keep = torch.tensor(live, device=dev)
                    keys = [k[keep] for k in keys]
                    values = [v[keep] for v in values]
                    pos, tokens = pos[keep], tokens[keep]
                    owner, lens = [owner[s] for s in live], [lens[s] for s in live]
                    slots = len(live)
                    live = list(range(slots))
                top = max(lens[s] for s in live) + 1
                rows = torch.arange(slots, device=dev)
                x = inner.embed_tokens(tokens[:, None])
                cos, sin = inner.rotary_emb(x, pos[:, None])
                beyond = torch.arange(top, device=dev)[None, :] > pos[:, None]  # not yet written
                mask = torch.zeros(slots, 1, 1, top, dtype=dtype, device=dev).masked_fill_(beyond[:, None, None], -torch.inf)
                for layer, k_buf, v_buf in zip(layers, keys, values):
                    attn = layer.self_attn
                    h = layer.input_layernorm(x)
                    q = attn.q_proj(h).view(slots, 1, -1, head_dim).transpose(1, 2)
                    k = attn.k_proj(h).view(slots, 1, -1, head_dim).transpose(1, 2)
                    v = attn.v_proj(h).view(slots, 1, -1, head_dim).transpose(1, 2)
                    q, k = apply_rotary_pos_emb(q, k, cos, sin)
                    k_buf[rows, :, pos] = k[:, :, 0]
                    v_buf[rows, :, pos] = v[:, :, 0]
                    k_all, v_all = k_buf[:, :, :top], v_buf[:, :, :top]
                    if n_rep > 1:
                        k_all = k_all.repeat_interleave(n_rep, dim=1)
                        v_all = v_all.repeat_interleave(n_rep, dim=1)
                    o = torch.matmul(q, k_all.transpose(2, 3)).mul_(attn.scaling).add_(mask)
                    o = torch.matmul(o.softmax(-1), v_all)
                    x = x + attn.o_proj(o.transpose(1, 2).reshape(slots, 1, -1))
                    x = x + layer.mlp(layer.post_attention_layernorm(x))
                tokens = model.lm_head(inner.norm(x)[:, -1]).argmax(-1)
                pos += 1
                done = []
                for s, token in zip(range(slots), tokens.tolist()):
                    i = owner[s]
                    if i is None:
                        continue
                    lens[s] += 1
                    produced[i].append(token)
                    if token == eos or len(produced[i]) == max_new_tokens:
                        owner[s] = None
                        done.append(s)
                        yield i, produced.pop(i)
                if done:  # a free slot idles at position 0 until it is refilled
                    pos[torch.tensor(done, device=dev)] = 0


def _llama_like(model) -> bool:
    """Whether the slot decoder knows this model's layers: Llama's (plain, unquantised)."""
    return getattr(model.config, "model_type", None) == "llama" and not getattr(model, "is_quantized", False)
