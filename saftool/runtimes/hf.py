"""The default backend: transformers models, with greedy decoding in saftool's own batched loops or
transformers' continuous batching.

Prompts are rendered and tokenized as in `saftool.runtimes.local` (the template, the cut past the
context, the stop tokens: the same as vllm), sorted by length, longest first. Greedy answers come
from one of three decoders, chosen by `HFRuntime.Options.decoder`:

* `slots`: saftool's continuous-batching decoder over a preallocated KV cache for Llama-family
  models (`HFRuntime._greedy_slots`, `_SlotDecoder`); `auto` picks it on the CPU, where it is 25x
  transformers' `generate_batch` on the tiny model (4,400 against 170 tokens/s, same text);
* `paged`: transformers' own continuous batching (paged attention; `saftool.runtimes.paged`: its cache
  sized by transformers' own footprint check within `max_memory` of the memory free beside the
  weights, answers yielded as they finish); `auto` picks it on CUDA for every architecture;
* `loop`: left-padded batches whose position ids count only real tokens, rows leaving the batch and
  its cache at a stop token (`HFRuntime._greedy`); `auto` picks it on the CPU for architectures the
  slot decoder does not know.

Each gives the one-prompt-at-a-time answer of `generate`. Sampling goes through `generate`. The KV
cache the slot decoder and the loop allocate is bounded by `HFRuntime.Options.max_memory` of the free
memory, whatever the batch size. A PEFT adapter directory is loaded onto the base it names and merged
in float32 (`saftool.adapters`), or kept unmerged on a 4-bit base with `load_in_4bit`; weights load only when the first prompt is answered, so a bad option fails before they do.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from pydantic import Field

from saftool.adapters import open_model_dir
from saftool.errors import UsageError
from saftool.hub import resolve_model
from saftool.records import GenerationConfig
from saftool.runtimes import Completion, LocalOptions, Prompt
from saftool.runtimes.local import (
    check_max_memory,
    check_template,
    context_length,
    encode_prompts,
    fit_context,
    free_memory,
    kv_bytes_per_token,
    load_tokenizer,
    local_dtype,
    model_config,
    rows_that_fit,
    stop_token_ids,
)

PREFILL_GROUP = 16  # prompts per prefill forward in the slot decoder, at most
# a prefill group takes the next (shorter) prompt only while its padded positions stay within this
# share of its real ones, or within PREFILL_FREE positions in all (short prompts: a forward's fixed
# cost outweighs a little padding): one 3,590-token prompt among the study's seed-safe ones (median
# 63 tokens) would otherwise pad the 15 next longest to its length
PREFILL_PADDING = 1.25
PREFILL_FREE = 1024
# prompts whose span (prompt + answer) is over this many times that of the prompt at rank
# `batch_size` are answered in a pass of their own, before the rest: every slot's cache is sized
# for the longest prompt of its pass, and one long prompt would size them all
OWN_PASS = 2.0
ATTN_ROWS = 32  # slots per attention block in a decode step
DECODERS = ("auto", "slots", "paged", "loop")


class HFRuntime:
    name = "hf"
    default_batch_size = 64
    loads_model_dir = True
    default_template = "alpaca"

    class Options(LocalOptions):
        decoder: str = Field(default="auto", description="Greedy path: auto, slots, paged or loop.")
        load_in_4bit: bool = Field(
            default=False, description="The base in 4-bit NF4 with a LoRA adapter unmerged on it (QLoRA)."
        )
        dtype: str = Field(default="auto", description="auto (`local_dtype`), float32 or bfloat16.")

    def __init__(self, model: str, options: Options | None = None, *, store=None):
        """`model`: a model directory, or with `store` a store name or a Hub id (`resolve_model`)."""
        import torch

        from saftool.devices import resolve_device

        options = options or self.Options()
        if options.decoder not in DECODERS:
            raise UsageError(f"unknown decoder {options.decoder!r}; choose one of: {', '.join(DECODERS)}")
        check_max_memory(options.max_memory)
        self.source = resolve_model(model, store)
        self.local = open_model_dir(str(self.source.path))
        self.options = options
        use_cuda = resolve_device(options.device)
        self.config = model_config(self.local)
        self.dtype = local_dtype(use_cuda, options.dtype, self.config)
        self.device = torch.device("cuda" if use_cuda else "cpu")
        self.batch_size = options.batch_size or self.default_batch_size
        self.tokenizer = load_tokenizer(self.local)
        self.stops = stop_token_ids(self.tokenizer, self.local)
        self._model = None
        self._fused: list | None = None  # the slot decoder's per-layer weights, built on first use
        self.decoder()  # a decoder this model cannot run is an error now, before any weights load

    @property
    def model(self):
        """The weights, loaded on first use."""
        if self._model is None:
            from saftool.adapters import load_causal_lm

            self._model = load_causal_lm(self.local, self.dtype, self.device, load_in_4bit=self.options.load_in_4bit)
        return self._model

    @property
    def weights(self) -> str | None:
        """'nf4' or 'bf16' where the weights are held so, since the answers are not float32's."""
        if self.options.load_in_4bit:
            return "nf4"
        return "bf16" if str(self.dtype) == "torch.bfloat16" else None

    def prompt_template(self, generation: GenerationConfig, model: str) -> str:
        return check_template(self.tokenizer, generation, model)

    def decoder(self) -> str:
        """The greedy path this model runs on (see the module docstring)."""
        llama = (
            _llama_like(self.config)
            and not getattr(self.config, "quantization_config", None)
            and not self.options.load_in_4bit  # the slot decoder reads plain weight matrices
        )
        chosen = self.options.decoder
        if chosen == "auto":
            return "paged" if self.device.type == "cuda" else "slots" if llama else "loop"
        if chosen == "slots" and not llama:
            raise UsageError(f"--decoder slots runs Llama-family models only, not {self.config.model_type}")
        return chosen

    def generate(self, prompts: Sequence[Prompt], generation: GenerationConfig) -> Iterator[tuple[int, Completion]]:
        tok, stops = self.tokenizer, set(self.stops)
        encoded = fit_context(
            encode_prompts(tok, prompts, generation), context_length(self.config), generation.max_new_tokens
        )
        lengths = [len(ids) for ids in encoded]
        order = sorted(range(len(prompts)), key=lambda i: -lengths[i])
        if not order:
            return
        if generation.do_sample:
            produced = self._sample(encoded, order, generation)
        else:
            decoder = self.decoder()
            if decoder == "slots":
                produced = self._greedy_slots(encoded, order, generation.max_new_tokens, stops)
            elif decoder == "paged":
                produced = self._greedy_paged(encoded, order, generation.max_new_tokens)
            else:
                produced = self._greedy_batches(encoded, order, generation.max_new_tokens, stops)
        for i, ids in produced:
            ids = _until_stop(ids, stops)
            answer = ids[:-1] if ids and ids[-1] in stops else ids  # the stop token is not part of the answer
            yield i, Completion(tok.decode(answer, skip_special_tokens=True).strip(), lengths[i], len(ids))

    def _rows(self, span: int) -> int:
        """Prompts decoded together when each holds `span` positions of KV cache: the batch size, or
        fewer where `max_memory` of the free memory holds fewer (one 4,000-token prompt of Llama-2-7B
        takes 2 GiB; 64 of them would not fit an 80 GB card)."""
        row = kv_bytes_per_token(self.config, self.dtype.itemsize) * span
        self.model  # noqa: B018 - the weights load first, so the free memory is what is left beside them
        return rows_that_fit(free_memory(self.device), self.options.max_memory, row, self.batch_size)

    def _batches(self, encoded, order, max_new_tokens):
        """Longest-first batches of prompt indices, each as many rows as the memory bound allows."""
        start = 0
        while start < len(order):
            rows = self._rows(len(encoded[order[start]]) + max_new_tokens)
            yield order[start : start + rows]
            start += rows

    def _padded(self, encoded, idx):
        return self.tokenizer.pad({"input_ids": [encoded[i] for i in idx]}, return_tensors="pt").to(self.device)

    def _sample(self, encoded, order, generation: GenerationConfig) -> Iterator[tuple[int, list[int]]]:
        import torch
        from transformers import GenerationConfig as HFGenerationConfig

        config = HFGenerationConfig(
            max_new_tokens=generation.max_new_tokens,
            do_sample=True,
            temperature=generation.temperature,
            top_p=generation.top_p,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.stops,
        )
        if generation.seed is not None:
            torch.manual_seed(generation.seed)
        for idx in self._batches(encoded, order, generation.max_new_tokens):
            enc = self._padded(encoded, idx)
            with torch.inference_mode():
                out = self.model.generate(**enc, generation_config=config)
            yield from zip(idx, out[:, enc["input_ids"].shape[1] :].tolist())

    def _greedy_batches(self, encoded, order, max_new_tokens: int, stops: set[int]):
        import torch

        for idx in self._batches(encoded, order, max_new_tokens):
            enc = self._padded(encoded, idx)
            with torch.inference_mode():
                new = self._greedy(enc["input_ids"], enc["attention_mask"], max_new_tokens, stops)
            yield from zip(idx, new)

    def _greedy_paged(self, encoded, order, max_new_tokens: int) -> Iterator[tuple[int, list[int]]]:
        """transformers' continuous batching, answers yielded as they finish (`saftool.runtimes.paged`)."""
        from saftool.runtimes.paged import generate_paged

        model = self.model  # the weights load first: the cache is sized from the memory left beside them
        prompts = [encoded[i] for i in order]
        for k, new in generate_paged(
            model, prompts, max_new_tokens, self.stops, self.tokenizer.pad_token_id, self.options.max_memory
        ):
            yield order[k], new

    def _greedy(self, input_ids, attention_mask, max_new_tokens: int, stops: set[int]) -> list[list[int]]:
        """Greedy decoding of a left-padded batch; rows leave the batch (and the cache) at a stop token."""
        import torch
        from transformers import DynamicCache

        cache = DynamicCache(config=self.model.config)
        keyword = _cache_keyword(self.model)
        positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
            **{keyword: cache},
        )
        stop_ids = torch.tensor(sorted(stops), device=input_ids.device)
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
            running = ~torch.isin(tokens, stop_ids)
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
                use_cache=True,
                **{keyword: cache},
            )
            tokens = out.logits[:, -1].argmax(-1)
        return produced

    def _greedy_slots(
        self, encoded: list[list[int]], order: list[int], max_new_tokens: int, stops: set[int]
    ) -> Iterator[tuple[int, list[int]]]:
        """Greedy decoding of Llama-family models with continuous batching (see `_SlotDecoder`), in
        passes (`slot_passes`): the longest prompts, where few are far longer than the rest, get a
        pass and slots of their own, so that they do not size every slot's cache."""
        if self._fused is None:
            self._fused = _fused_layers(self.model)
        for part in slot_passes([len(encoded[i]) + max_new_tokens for i in order], self.batch_size):
            yield from self._slot_pass(encoded, order[part], max_new_tokens, stops)

    def _slot_pass(
        self, encoded: list[list[int]], order: list[int], max_new_tokens: int, stops: set[int]
    ) -> Iterator[tuple[int, list[int]]]:
        """One pass of the slot decoder over `order` (longest first).

        The live slots are always the first `n`: a prompt leaves its slot at a stop token and is
        yielded at once, and the last live slots move into the holes, so every op of a step runs on
        live rows only (no step computes for a finished prompt or an empty slot). Slots are refilled
        from the queue (longest prompts first) whenever a quarter of them are free, in prefills of up
        to `PREFILL_GROUP` similar-length prompts (`prefill_groups`). There are as many slots as the
        batch size, or fewer where `max_memory` of the free memory holds fewer caches of the longest
        prompt's span.
        """
        import torch

        queue = list(reversed(order))  # pop() takes the longest prompt left
        span = max(len(encoded[i]) for i in order) + max_new_tokens
        slots = min(self._rows(span), len(order))
        dec = _SlotDecoder(self.model, self._fused, slots, span, self.tokenizer.pad_token_id, self.device)
        owner = [0] * slots  # prompt index held by each live slot
        lens = [0] * slots  # positions each slot has written, as Python ints (no device sync)
        produced: dict[int, list[int]] = {}
        n = 0  # live slots: 0..n-1

        def retire(done: list[int]) -> None:
            nonlocal n
            gone = set(done)
            keep = n - len(done)
            holes = [s for s in done if s < keep]
            movers = [s for s in range(keep, n) if s not in gone]
            if holes:
                dec.move(holes, movers, max(lens[s] for s in movers))
                for h, m in zip(holes, movers):
                    owner[h], lens[h] = owner[m], lens[m]
            n = keep

        with torch.inference_mode():
            while queue or n:
                if queue and (slots - n) * 4 >= slots:
                    take = [queue.pop() for _ in range(min(slots - n, len(queue)))]
                    firsts = []
                    for group in prefill_groups([len(encoded[i]) for i in take]):
                        firsts += dec.prefill([encoded[i] for i in take[group]], n + group.start)
                    done = []
                    for s, (i, first) in enumerate(zip(take, firsts), start=n):
                        owner[s], lens[s], produced[i] = i, len(encoded[i]), [first]
                        if first in stops or max_new_tokens == 1:
                            done.append(s)
                            yield i, produced.pop(i)
                    n += len(take)
                    retire(done)
                    continue
                done = []
                for s, token in enumerate(dec.step(lens[:n])):
                    i = owner[s]
                    lens[s] += 1
                    produced[i].append(token)
                    if token in stops or len(produced[i]) == max_new_tokens:
                        done.append(s)
                        yield i, produced.pop(i)
                retire(done)


def slot_passes(spans: list[int], batch_size: int) -> list[slice]:
    """The slot decoder's passes over prompts of `spans` (longest first), as slices.

    The prompts longer than `OWN_PASS` times the one at rank `batch_size` (the longest a full set
    of slots would hold without them) go first, in a pass of their own whose few slots are sized
    for them; the rest share slots sized for the longest of the rest. Sets no larger than the
    batch size are one pass: they fill the slots at once whatever their lengths.
    """
    if len(spans) <= batch_size:
        return [slice(0, len(spans))]
    bound = OWN_PASS * spans[batch_size - 1]
    long = next((k for k, span in enumerate(spans) if span <= bound), len(spans))
    return [slice(0, long), slice(long, len(spans))] if long else [slice(0, len(spans))]


def prefill_groups(lengths: list[int]) -> list[slice]:
    """Consecutive groups of prompts of `lengths` (longest first) to prefill together: at most
    `PREFILL_GROUP`, each padded to its first only while that stays within `PREFILL_PADDING` times
    its real positions or `PREFILL_FREE` positions (one very long prompt is prefilled alone, not with
    15 others padded to it)."""
    groups, start = [], 0
    while start < len(lengths):
        end, real = start + 1, lengths[start]
        while (
            end < len(lengths)
            and end - start < PREFILL_GROUP
            and lengths[start] * (end + 1 - start) <= max(PREFILL_PADDING * (real + lengths[end]), PREFILL_FREE)
        ):
            real += lengths[end]
            end += 1
        groups.append(slice(start, end))
        start = end
    return groups


class _SlotDecoder:
    """One greedy step at a time for up to `slots` prompts of a Llama model, over a preallocated KV cache.

    Each slot holds one prompt's keys and values from position 0 (no padding) in buffers sized
    once for `span` positions (the longest prompt plus the answer), laid out (slot, kv head) by
    position, so a step writes each slot's new key and value in place at that slot's own position.
    A step runs the model's own weights (norms, activation, rotary table) in few ops: q/k/v and
    gate/up each as one matmul (`_fused_layers`), rotary from a table built once, and attention as
    one batched matmul per side under a length mask, over blocks of `ATTN_ROWS` slots that each
    read only as far as their longest slot; grouped-query heads share their key head instead of
    repeating it. The text equals the one-prompt answer. Buffers start zeroed: the additive mask
    must never meet NaN garbage.

    On the bench (tiny model, 200 prompts, 100 new tokens, 1 thread, 64 slots) a run took 0.77 s
    against 0.95 s for the decoder this replaced (median of 5, same process, 2-core machine shared
    with other jobs): about 35% in prefill (matmuls near the core's FLOP rate), 40% in steps with
    many live slots (half of it attention, which streams the float32 cache from memory) and 15% in
    the last answers' steps with a few slots (per-op dispatch).
    """

    def __init__(self, model, layers, slots: int, span: int, pad: int, device):
        import torch

        inner, config = model.model, model.config
        attn = inner.layers[0].self_attn
        self.model, self.inner, self.layers, self.pad, self.dev = model, inner, layers, pad, device
        self.heads, self.n_kv = config.num_attention_heads, config.num_key_value_heads
        self.head_dim = attn.head_dim
        self.n_rep, self.scaling = self.heads // self.n_kv, attn.scaling
        self.qk_width = (self.heads + self.n_kv) * self.head_dim
        self.slots, self.span, self.dtype = slots, span, inner.embed_tokens.weight.dtype
        shape = (slots * self.n_kv, span, self.head_dim)
        self.keys = [torch.zeros(shape, dtype=self.dtype, device=device) for _ in layers]
        self.values = [torch.zeros_like(k) for k in self.keys]
        # row of the flat (slot, kv head, position) cache where each slot's kv heads start
        self.head_rows = (torch.arange(slots * self.n_kv, device=device) * span).view(slots, self.n_kv)
        self.where = torch.arange(span, device=device)
        cos, sin = inner.rotary_emb(self.keys[0], self.where[None])
        half = self.head_dim // 2
        # rotate_half(x) * sin == x with its halves swapped * sin with its first half negated, exactly
        self.cos, self.sin = cos[0, :, None], torch.cat([-sin[0, :, None, :half], sin[0, :, None, half:]], -1)
        self.pos = torch.zeros(slots, dtype=torch.long, device=device)  # where each slot writes next
        self.tokens = torch.full((slots,), pad, dtype=torch.long, device=device)  # each slot's next input

    def _rope(self, x, cos, sin):
        # roll swaps the halves (rotate_half up to the sign, which self.sin carries); flip is 3x slower
        return x * cos + x.roll(self.head_dim // 2, -1) * sin

    def prefill(self, prompts: list[list[int]], at: int) -> list[int]:
        """Run `prompts` into slots at, at+1, ...; their first answer tokens.

        Right-padded to the longest: attention is causal, so the pads after a prompt never reach
        it, and the keys they leave past its end are masked until overwritten. After the last
        layer's attention only each prompt's last position goes on: the cache needs every
        position's keys and values, the answer only the last hidden state (a fifth of the work).
        """
        import torch
        import torch.nn.functional as F

        heads, n_kv, head_dim, dev = self.heads, self.n_kv, self.head_dim, self.dev
        width = max(len(ids) for ids in prompts)
        ids = torch.full((len(prompts), width), self.pad, dtype=torch.long)
        for r, row in enumerate(prompts):
            ids[r, : len(row)] = torch.tensor(row)
        x = self.inner.embed_tokens(ids.to(dev))
        cos, sin = self.cos[:width], self.sin[:width]
        rows = slice(at * n_kv, (at + len(prompts)) * n_kv)
        ends = torch.tensor([len(row) - 1 for row in prompts], device=dev)
        last = (torch.arange(len(prompts), device=dev), ends)
        for li, (layer, k_buf, v_buf) in enumerate(zip(self.layers, self.keys, self.values)):
            norm, qkv_w, o_w, norm2, gate_up, act, down_w = layer
            qkv = F.linear(norm(x), *qkv_w)
            qk = self._rope(qkv[..., : self.qk_width].unflatten(-1, (heads + n_kv, head_dim)), cos, sin)
            q, k = qk[:, :, :heads].transpose(1, 2), qk[:, :, heads:].transpose(1, 2)
            v = qkv[..., self.qk_width :].unflatten(-1, (n_kv, head_dim)).transpose(1, 2)
            k_buf[rows, :width] = k.flatten(0, 1)
            v_buf[rows, :width] = v.flatten(0, 1)
            gqa = self.n_rep > 1
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scaling, enable_gqa=gqa)
            o = o.transpose(1, 2).flatten(2)
            if li == len(self.layers) - 1:
                x, o = x[last], o[last]
            x = x + F.linear(o, *o_w)
            gate, up = F.linear(norm2(x), *gate_up).chunk(2, -1)
            x = x + F.linear(act(gate) * up, *down_w)
        first = _argmax(self.model.lm_head(self.inner.norm(x)))
        self.pos[at : at + len(prompts)] = ends + 1
        self.tokens[at : at + len(prompts)] = first
        return first.tolist()

    def step(self, lens: list[int]) -> list[int]:
        """One token for each of the first len(lens) slots, which hold lens[s] positions each."""
        import torch
        import torch.nn.functional as F

        n, heads, n_kv, n_rep, head_dim = len(lens), self.heads, self.n_kv, self.n_rep, self.head_dim
        pos = self.pos[:n]
        x = self.inner.embed_tokens(self.tokens[:n])
        cos, sin = self.cos[pos], self.sin[pos]
        # attention runs over blocks of ATTN_ROWS slots, each reading only as far as its longest
        # slot: slots hold prompts of very different lengths, and most steps' time is these reads
        fp32 = self.dtype == torch.float32
        blocks = []
        for a in range(0, n, ATTN_ROWS):
            b = min(n, a + ATTN_ROWS)
            top = max(lens[a:b]) + 1
            seen = self.where[:top] <= pos[a:b, None, None, None]  # (slots, 1, 1, top)
            if fp32:
                mask = torch.zeros(seen.shape, dtype=torch.float32, device=self.dev).masked_fill_(~seen, -torch.inf)
                mask = mask.expand(-1, n_kv, n_rep, -1).flatten(0, 1)
            else:
                mask = seen.repeat_interleave(n_kv, 0)  # (slots * kv heads, 1, 1, top)
            blocks.append((slice(a * n_kv, b * n_kv), top, mask))
        at = (self.head_rows[:n] + pos[:, None]).flatten()
        for layer, k_buf, v_buf in zip(self.layers, self.keys, self.values):
            norm, qkv_w, o_w, norm2, gate_up, act, down_w = layer
            qkv = F.linear(norm(x), *qkv_w)
            qk = self._rope(qkv[:, : self.qk_width].unflatten(-1, (heads + n_kv, head_dim)), cos, sin)
            k_buf.view(-1, head_dim).index_copy_(0, at, qk[:, heads:].reshape(-1, head_dim))
            v_buf.view(-1, head_dim).index_copy_(0, at, qkv[:, self.qk_width :].reshape(-1, head_dim))
            q = qk[:, :heads].reshape(n * n_kv, n_rep, head_dim)
            o = torch.empty_like(q)
            for rows, top, mask in blocks:
                if fp32:
                    scores = torch.baddbmm(mask, q[rows], k_buf[rows, :top].transpose(1, 2), alpha=self.scaling)
                    torch.bmm(scores.softmax(-1), v_buf[rows, :top], out=o[rows])
                    continue
                # bf16: the fused kernel keeps scores and softmax in float32 (rounding scores to bf16's
                # 8-bit mantissa would move the probabilities by percents, and the greedy text with
                # them) without converting the cache to float32 first, which took a fifth of a step;
                # each kv head's n_rep query heads are its query positions, sharing its keys
                o[rows] = F.scaled_dot_product_attention(
                    q[rows, None], k_buf[rows, None, :top], v_buf[rows, None, :top], attn_mask=mask, scale=self.scaling
                )[:, 0]
            x = x + F.linear(o.view(n, heads * head_dim), *o_w)
            gate, up = F.linear(norm2(x), *gate_up).chunk(2, -1)
            x = x + F.linear(act(gate) * up, *down_w)
        tokens = _argmax(self.model.lm_head(self.inner.norm(x)))
        self.tokens[:n] = tokens
        pos += 1
        return tokens.tolist()

    def move(self, holes: list[int], movers: list[int], width: int) -> None:
        """Copy slots `movers` (their first `width` positions) into slots `holes`."""
        import torch

        dst, src = torch.tensor(holes, device=self.dev), torch.tensor(movers, device=self.dev)
        for buf in self.keys + self.values:
            cache = buf.view(self.slots, self.n_kv, self.span, self.head_dim)
            cache[dst, :, :width] = cache[src, :, :width]
        self.pos[dst], self.tokens[dst] = self.pos[src], self.tokens[src]


def _argmax(logits, width: int = 1024):
    """`logits.argmax(-1)` of a 2-d tensor, the same index (the first of equal maxima), in a tenth of the time.

    torch's CPU argmax walks a row one element at a time: 9 ms for 64 rows of a 49,152-token vocabulary,
    as long as a decode step's attention. The vectorised `amax` finds each row's window of `width` that
    holds its maximum (the first such window), and argmax then walks that window only.
    """
    import torch

    vocab = logits.shape[-1]
    whole = vocab - vocab % width
    tops = logits[:, :whole].unflatten(-1, (-1, width)).amax(-1)
    if whole < vocab:
        tops = torch.cat([tops, logits[:, whole:].amax(-1, keepdim=True)], -1)
    start = tops.argmax(-1) * width
    # the last window may run past the vocabulary: its extra places repeat the last logit, after it
    at = (start[:, None] + torch.arange(width, device=logits.device)).clamp_(max=vocab - 1)
    return start + logits.gather(1, at).argmax(-1)


def _fused_layers(model) -> list[tuple]:
    """Per decoder layer, what `_SlotDecoder` calls: (input norm, q/k/v (weight, bias) fused,
    o_proj (weight, bias), post-attention norm, gate/up fused, activation, down_proj)."""
    out = []
    for layer in model.model.layers:
        attn, mlp = layer.self_attn, layer.mlp
        out.append(
            (
                _rms_norm(layer.input_layernorm),
                _fuse_linears([attn.q_proj, attn.k_proj, attn.v_proj]),
                (attn.o_proj.weight, attn.o_proj.bias),
                _rms_norm(layer.post_attention_layernorm),
                _fuse_linears([mlp.gate_proj, mlp.up_proj]),
                mlp.act_fn,
                (mlp.down_proj.weight, mlp.down_proj.bias),
            )
        )
    return out


def _rms_norm(norm):
    """Llama's RMSNorm as one `F.rms_norm` call, whose ops dispatch in C++ rather than one by one from
    Python; the same bits as the module (normalised in float32, cast back, then scaled by the weight
    in the model's dtype)."""
    import torch.nn.functional as F

    shape, eps, weight = norm.weight.shape, norm.variance_epsilon, norm.weight

    def apply(x):
        return weight * F.rms_norm(x.float(), shape, None, eps).to(x.dtype)

    return apply


def _fuse_linears(linears) -> tuple:
    """(weight, bias) of one linear that does the work of `linears`, which all read the same input.

    The modules' own parameters become views of the fused ones, so the model still runs as loaded
    and holds no second copy of its weights (on a 7B model that would be gigabytes).
    """
    import torch

    weight = torch.cat([m.weight.detach() for m in linears])
    bias = None if linears[0].bias is None else torch.cat([m.bias.detach() for m in linears])
    start = 0
    for m in linears:
        end = start + m.weight.shape[0]
        m.weight = torch.nn.Parameter(weight[start:end], requires_grad=False)
        if bias is not None:
            m.bias = torch.nn.Parameter(bias[start:end], requires_grad=False)
        start = end
    return weight, bias


def _llama_like(config) -> bool:
    """Whether the slot decoder knows this model's layers: Llama's (Llama-2 and Llama-3 rope alike)."""
    return getattr(config, "model_type", None) == "llama"


def _until_stop(ids: list[int], stops: set[int]) -> list[int]:
    """The answer's tokens up to and including its first stop token (sampling runs past it in a batch)."""
    for n, token in enumerate(ids):
        if token in stops:
            return ids[: n + 1]
    return ids


def _cache_keyword(model) -> str:
    """The forward keyword that takes a KV cache: `cache` from transformers 5.24, `past_key_values`
    before. An older forward swallows an unknown `cache=` into its **kwargs and silently builds a
    cache of its own, so the name is read from the signature rather than assumed."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
