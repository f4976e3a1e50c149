"""GPU acceptance: what saftool's GPU paths do on a Llama-2-7B-shaped model, one table (one CUDA GPU).

    python bench/gpu/acceptance.py [--steps 10] [--prompts 512] [--new-tokens 100] [--peak-tflops T]
    python bench/gpu/acceptance.py --plan --card h100     # no GPU needed: rows, memory, time budget

Meant for one H100 or H200 with no internet, in under 10 minutes. The model has Llama-2-7B's shape
(hidden 4096, 32 layers, 32 heads, MLP 11008, vocabulary 32000) with random weights, saved once as
bf16 safetensors in a temporary folder with a byte-level BPE tokenizer trained in code on the benign
prompts; its context is 16,384 positions instead of 4,096 (rotary positions add no parameters) so the
long-prompt row is not cut to the context.

Output (stdout): a header with the card, its driver and the library versions, then one line per row,
printed as soon as that row is measured. A row that fails prints its error in its own line and the
next row runs. Rows whose time budget no longer fits in `--budget-s` (default 600 s) are skipped, each
saying so. The last line is the key ratio: vllm / hf greedy generation where both ran (which engine
the study's inference should use), else QLoRA / LoRA training (what 4-bit costs per token).

Rows:
* `qlora`, `lora`, `full` train step: the trainer `saftool train` builds (`saftool.train.make_trainer`:
  the same model loading, TRL's own PEFT wrapping, gradient checkpointing and bf16 autocast) for the
  llama2-7b presets at their micro-batch 4 and cutoff 256, one optimizer step per micro-batch, on
  examples longer than the cutoff (every one is cut to it), timed after two warm-up steps. Full
  fine-tuning needs ~102 GiB (fp32 weights, gradients, AdamW states): on an 80 GB card it shows as
  "does not fit" (that is what examples/accelerate/fsdp.yaml is for); an H200 runs it.
* `hf` greedy bf16: `--prompts` prompts x `--new-tokens` tokens through saftool's hf runtime (its
  public `generate`, the paged decoder on CUDA).
* `hf-nf4`: `--nf4-prompts` of them through the hf runtime with `load_in_4bit` on a random QLoRA
  adapter (r 8, q/v): how the study's QLoRA models are evaluated (README: "QLoRA models are evaluated
  on their 4-bit base").
* `vllm` greedy bf16, where vllm is installed; then `same-text`: how many of 32 fixed prompts get the
  same greedy text from hf and vllm (random weights have near-ties between logits, so bf16 kernels of
  two engines may part ways: the row counts, it does not assert).
* `hf-kv`: the hf runtime's KV-memory bound (`--max-memory`) on one 12,600-token prompt: the share is
  set so the budget holds 1.5 such prompts' cache; PASS when the peak memory above the loaded weights
  stays within the budget plus 2 GiB for the prefill's activations.

MFU counts model FLOPs only, with N the parameters less the input embedding (a lookup, not a matmul;
the LM head stays): 2N per generated token; 6N per trained token for full fine-tuning; 4N for
LoRA/QLoRA (forward 2N, backward through the frozen weights 2N; the adapters' own weight gradients
are negligible); neither checkpointing's recomputation nor attention scores are counted. The peak is
the dense bf16 tensor-core rate of the card found (`CARDS`: H100 SXM, PCIe and NVL, H200 and H200
NVL, A100), or `--peak-tflops`.

The 10-minute bound, checked without a GPU: `--plan` prints, per row, the memory it needs on a card
and a time budget from FLOP and byte counts at pessimistic shares of the card's peak and bandwidth
(`EFFICIENCY`), plus fixed costs for disk reads, 4-bit quantisation and vLLM's start; their sum must
stay under `--budget-s` (tests/test_gpu_acceptance.py checks it on an H100 and an H200). The hf rows'
paged KV cache is the one transformers' own sizing builds on that card for these prompts
(`saftool.runtimes.paged.plan_for_card`, on the meta device), which also says how many waves of
prompts the cache takes. A run uses
the same budgets to skip a row that would overrun, so the script ends within the bound whatever a
row does, unless a single row runs far beyond its own budget.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import importlib.util
import math
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # saftool from this checkout, as the other benches

GiB = 2**30
LONG_PROMPT_TOKENS = 12_600
SAME_TEXT_PROMPTS = 32
WARMUP_STEPS = 2
CUDA_CONTEXT_GIB = 0.5  # the CUDA context and cuBLAS workspaces, outside the allocator's count
LIBRARIES = ("torch", "transformers", "trl", "peft", "accelerate", "bitsandbytes", "vllm")


@dataclass(frozen=True)
class Card:
    key: str  # --card
    label: str
    pattern: str  # matched (whole words) against torch.cuda.get_device_name()
    peak_tflops: float  # dense bf16 tensor-core rate, no sparsity
    memory_gib: float  # as torch reports total_memory (the spec's GB less what the driver keeps)
    bandwidth_tbs: float  # memory bandwidth, TB/s


CARDS = (  # NVIDIA's data sheets; the most specific names first
    Card("h200-nvl", "NVIDIA H200 NVL", r"H200 NVL", 835.0, 139.8, 4.8),
    Card("h200", "NVIDIA H200 (SXM)", r"H200", 989.0, 139.8, 4.8),
    Card("h100-nvl", "NVIDIA H100 NVL", r"H100 NVL", 835.0, 87.5, 3.9),
    Card("h100-pcie", "NVIDIA H100 PCIe", r"H100 PCIe", 756.0, 79.1, 2.0),
    Card("h100", "NVIDIA H100 (SXM)", r"H100", 989.0, 79.1, 3.35),
    Card("a100", "NVIDIA A100 80GB (SXM)", r"A100", 312.0, 79.1, 2.0),
)
# the shares of the card's peak FLOP rate (train) or memory bandwidth (decode) the budgets assume:
# well below what these workloads reach, so a budget overestimates the time
EFFICIENCY = {"train": 0.15, "qlora": 0.05, "decode": 0.10, "prefill": 0.10}
DISK_GBS = 1.0  # reading or writing a checkpoint, GB/s (the page cache is faster)
QUANTIZE_S = 30.0  # bitsandbytes quantising 7B weights to NF4 while they load
VLLM_START_S = 180.0  # vLLM's engine start: weights, memory profiling, CUDA graphs
ROW_OVERHEAD_S = 10.0  # imports, warm-up calls, freeing memory
UNKNOWN_CARD_TFLOPS = 312.0  # budgets on a card CARDS lacks

FLOPS_PER_TOKEN = {"full": 6, "lora": 4, "qlora": 4, "generate": 2}  # x N


def find_card(name: str) -> Card | None:
    for card in CARDS:
        if re.search(rf"(?<![A-Za-z0-9]){card.pattern}(?![A-Za-z0-9])", name):
            return card
    return None


@dataclass
class Row:
    key: str  # what the ratio line reads a row by: qlora, lora, full, hf, hf-nf4, vllm, same-text, hf-kv
    workload: str
    tokens_per_second: float | None = None  # None: no rate (see note)
    flops_per_token: float = 0.0
    peak_gib: float | None = None
    note: str = ""

    def mfu(self, peak: float | None) -> float | None:
        """Model FLOPs utilisation in percent, or None without a known peak or a rate."""
        if not peak or self.tokens_per_second is None:
            return None
        return 100 * self.tokens_per_second * self.flops_per_token / (peak * 1e12)


HEADER = f"{'workload':<38} {'tokens/s':>10} {'MFU %':>6} {'peak GiB':>8}  note"


def format_row(row: Row, peak: float | None) -> str:
    def cell(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    return (
        f"{row.workload:<38} {cell(row.tokens_per_second, ',.0f'):>10} {cell(row.mfu(peak), '.1f'):>6} "
        f"{cell(row.peak_gib, '.1f'):>8}  {row.note}"
    ).rstrip()


def key_ratio(rows: list[Row]) -> str:
    """The line that sums the table up (see the module docstring)."""
    rate = {row.key: row.tokens_per_second for row in rows}
    if rate.get("vllm") and rate.get("hf"):
        return f"ratio: vllm / hf greedy generation = {rate['vllm'] / rate['hf']:.2f}x"
    if rate.get("qlora") and rate.get("lora"):
        return f"ratio: qlora / lora train step tokens/s = {rate['qlora'] / rate['lora']:.2f}x"
    return "ratio: not enough rows ran to form one"


# --- the model, and the arithmetic of each row --------------------------------------------------


def llama2_7b_config(vocab_size: int = 32000, **tokens):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        max_position_embeddings=16384,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        **tokens,
    )


@dataclass(frozen=True)
class Shape:
    """The parameter counts of the model, read from it built on the meta device (nothing allocated)."""

    total: int  # every parameter
    linear: int  # those in the decoder layers' linear layers (what NF4 quantises)
    embedding: int  # the input embedding: left out of MFU's N
    kv_bytes_per_token: int  # bf16 keys and values of one position, all layers
    hidden: int
    heads: int
    layers: int
    vocab: int
    widest_linear: int  # parameters of the biggest linear layer (a dequantised weight in flight)

    @property
    def n_mfu(self) -> int:
        return self.total - self.embedding

    @classmethod
    def of(cls, config) -> Shape:
        import torch
        from transformers import AutoModelForCausalLM

        from saftool.runtimes.local import kv_bytes_per_token

        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
        layers = model.model.layers
        linears = [m for m in layers.modules() if isinstance(m, torch.nn.Linear)]
        return cls(
            total=sum(p.numel() for p in model.parameters()),
            linear=sum(m.weight.numel() for m in linears),
            embedding=model.get_input_embeddings().weight.numel(),
            kv_bytes_per_token=kv_bytes_per_token(config, 2),
            hidden=config.hidden_size,
            heads=config.num_attention_heads,
            layers=config.num_hidden_layers,
            vocab=config.vocab_size,
            widest_linear=max(m.weight.numel() for m in linears),
        )

    def nf4_bytes(self) -> int:
        """The weights as QLoRA holds them: NF4 linear layers (half a byte, plus double-quantised
        absmax: one 8-bit constant per 64 weights and one fp32 per 256 of those), the rest bf16."""
        per_weight = 0.5 + 1 / 64 + 4 / (64 * 256)
        return int(self.linear * per_weight + 2 * (self.total - self.linear))

    def activation_bytes(self, batch: int, seq: int) -> int:
        """Training activations under gradient checkpointing (bf16): each layer's input is kept, one
        layer's full activations are recomputed at a time (Korthikanti et al. 2022: 34·s·b·h + 5·a·s²·b
        bytes in 16-bit), and the fp32 logits, their log-softmax and gradient."""
        kept = self.layers * batch * seq * self.hidden * 2
        one_layer = 34 * seq * batch * self.hidden + 5 * self.heads * seq * seq * batch
        logits = 3 * 4 * batch * seq * self.vocab
        return kept + one_layer + logits


@dataclass(frozen=True)
class Workload:
    """The bench's prompts and tokenizer, the same for --plan and a run: the benign eval prompts, a
    byte-level BPE tokenizer trained on them (one token per embedding row, so any id a random model
    emits decodes, in vLLM's detokenizer too) and each prompt's tokens as the hf runtime encodes it."""

    items: list
    prompts: list
    texts: list[str]
    tokenizer: object
    prompt_lengths: list[int]

    @classmethod
    def of(cls, n: int, vocab_size: int = 32000) -> Workload:
        from saftool.benign import benign_items
        from saftool.records import GenerationConfig
        from saftool.runtimes import Prompt
        from saftool.runtimes.local import encode_prompts
        from saftool.tiny import train_tokenizer

        items = list(benign_items(n, split="eval", seed=0))
        prompts = [Prompt(item.instruction, item.input) for item in items]
        texts = [f"{item.instruction} {item.input} {item.output}" for item in items]
        tokenizer = train_tokenizer(texts, 8000)
        tokenizer.add_tokens([f"<unused_{i}>" for i in range(vocab_size - len(tokenizer))])
        lengths = [len(e.ids) for e in encode_prompts(tokenizer, prompts, GenerationConfig())]
        return cls(items, prompts, texts, tokenizer, lengths)


@dataclass
class Need:
    """One row on one card: the memory it needs and a time budget (seconds), with how they were reckoned."""

    key: str
    workload: str
    gib: float
    seconds: float
    how: str
    fits: bool = True
    runs: bool = True  # False: the row is skipped on this setup (say why in `how`)


def lora_state_bytes(shape: Shape, r: int, targets: int) -> int:
    """The adapter in fp32 with its gradient and AdamW's two states: r x (in + out) per target layer."""
    return shape.layers * targets * r * 2 * shape.hidden * 16


def paged_cache(config, weights: int, card: Card, spans: list[int], fraction: float):
    """The paged KV cache saftool's hf runtime builds on `card` for prompts of `spans` positions with
    `weights` bytes of weights loaded: transformers' own sizing, run on the meta device with the
    card's memory in place of the device's (`saftool.runtimes.paged.plan_for_card`). Raises its
    UsageError where the card holds no cache for the longest prompt."""
    from saftool.runtimes.paged import CUDA_CONTEXT_BYTES, plan_for_card

    return plan_for_card(config, spans, fraction, int(card.memory_gib * GiB), used_bytes=weights + CUDA_CONTEXT_BYTES)


def plan(card: Card, config, shape: Shape, work: Workload, args, vllm: bool) -> list[Need]:
    """Every row the script runs on `card` for the model of `config` and the prompts of
    `work`, with its memory and time budget (see the module docstring)."""
    from saftool.errors import UsageError
    from saftool.presets import PRESETS
    from saftool.runtimes.paged import blocks_needed

    peak, bandwidth = card.peak_tflops * 1e12, card.bandwidth_tbs * 1e12
    bf16_bytes = 2 * shape.total
    read_s = bf16_bytes / (DISK_GBS * 1e9)
    tokens = (WARMUP_STEPS + args.steps) * args.micro_batch * args.seq_len
    acts = shape.activation_bytes(args.micro_batch, args.seq_len)
    needs = [
        Need(
            "build",
            "build the random checkpoint",
            bf16_bytes / GiB + CUDA_CONTEXT_GIB,
            read_s + 2 * ROW_OVERHEAD_S,
            f"{bf16_bytes / 1e9:.1f} GB written at {DISK_GBS} GB/s",
        )
    ]
    for method in ("qlora", "lora", "full"):
        preset = PRESETS[f"llama2-7b-{method}"]
        adapter = 0 if method == "full" else lora_state_bytes(shape, preset.lora_r, len(preset.lora_target_modules))
        weights = {"qlora": shape.nf4_bytes(), "lora": bf16_bytes, "full": 16 * shape.total}[method]
        dequant = 2 * 2 * shape.widest_linear if method == "qlora" else 0
        gib = (weights + adapter + acts + dequant) / GiB + CUDA_CONTEXT_GIB
        # hardware FLOPs: the forward twice (checkpointing recomputes it), the backward's input
        # gradients, and for full fine-tuning the weight gradients too
        hw = (8 if method == "full" else 6) * shape.n_mfu * tokens
        share = EFFICIENCY["qlora" if method == "qlora" else "train"]
        seconds = read_s * (2 if method == "full" else 1) + hw / (peak * share) + ROW_OVERHEAD_S
        seconds += QUANTIZE_S if method == "qlora" else 0
        fits = gib <= card.memory_gib
        needs.append(
            Need(
                method,
                f"{method} train step (batch {args.micro_batch}x{args.seq_len})",
                gib,
                seconds if fits else read_s * 2 + ROW_OVERHEAD_S,  # an OOM comes at the first step
                f"{weights / GiB:.1f} GiB weights{'+states' if method == 'full' else ''}, {acts / GiB:.1f} GiB "
                f"activations; {hw / 1e12:.0f} TFLOP at {share:.0%} of peak",
                fits=fits,
            )
        )
    for key, weights, prompts in (("hf", bf16_bytes, args.prompts), ("hf-nf4", shape.nf4_bytes(), args.nf4_prompts)):
        spans = [n + args.new_tokens for n in work.prompt_lengths[:prompts]]
        workload = f"hf {'nf4+adapter' if key == 'hf-nf4' else 'bf16'} greedy ({prompts}x{args.new_tokens})"
        try:
            cache = paged_cache(config, weights, card, spans, args.max_memory)
        except UsageError as exc:  # the card holds no cache for one prompt: what the row will say too
            needs.append(Need(key, workload, card.memory_gib, ROW_OVERHEAD_S + read_s, str(exc), fits=False))
            continue
        # the footprint transformers allows: the whole budget where the cache fills it, else the
        # cache (its working buffers come on top, within the budget)
        gib = (cache.used + (cache.budget if cache.fills_budget else cache.cache_bytes)) / GiB
        waves = math.ceil(blocks_needed(spans, cache.page_size) / cache.num_blocks)
        # each decode step reads the weights (NF4: dequantised to bf16, written and read again) and
        # the cache in flight; the prompts' prefill is compute
        in_flight = min(cache.cache_tokens, sum(spans)) * shape.kv_bytes_per_token
        step_bytes = weights + (2 * 2 * shape.linear if key == "hf-nf4" else 0) + in_flight
        decode_s = waves * args.new_tokens * step_bytes / (bandwidth * EFFICIENCY["decode"])
        prefill_s = 2 * shape.n_mfu * sum(work.prompt_lengths[:prompts]) / (peak * EFFICIENCY["prefill"])
        load_s = read_s + (QUANTIZE_S if key == "hf-nf4" else 0)
        needs.append(
            Need(
                key,
                workload,
                gib,
                load_s + decode_s + prefill_s + ROW_OVERHEAD_S,
                f"paged cache {cache.cache_tokens:,} tokens ({cache.cache_bytes / GiB:.1f} GiB"
                f"{', fills --max-memory' if cache.fills_budget else ''}), {waves} wave(s) of {args.new_tokens} "
                f"decode steps at {EFFICIENCY['decode']:.0%} of {card.bandwidth_tbs} TB/s",
            )
        )
    hf_decode = needs[-2].seconds - read_s - ROW_OVERHEAD_S
    needs.append(
        Need(
            "vllm",
            f"vllm greedy bf16 ({args.prompts}x{args.new_tokens})",
            args.max_memory * card.memory_gib,
            VLLM_START_S + hf_decode + ROW_OVERHEAD_S,
            f"vLLM takes --max-memory of the card; start {VLLM_START_S:.0f} s"
            + ("" if vllm else "; vllm is not installed: skipped"),
            runs=vllm,
        )
    )
    long_span = LONG_PROMPT_TOKENS + 200
    long_cache = 1.5 * long_span * shape.kv_bytes_per_token
    attention = 4 * shape.layers * LONG_PROMPT_TOKENS**2 * shape.hidden
    prefill = 2 * shape.n_mfu * LONG_PROMPT_TOKENS + attention
    needs.append(
        Need(
            "hf-kv",
            f"hf KV bound, {LONG_PROMPT_TOKENS:,}-token prompt",
            (bf16_bytes + long_cache) / GiB + 2 + CUDA_CONTEXT_GIB,
            read_s + prefill / (peak * EFFICIENCY["prefill"]) + ROW_OVERHEAD_S,
            f"cache budget {long_cache / GiB:.1f} GiB + 2 GiB prefill activations",
        )
    )
    return needs


def print_plan(card: Card, config, args, vllm: bool) -> int:
    shape = Shape.of(config)
    work = Workload.of(args.prompts)
    needs = plan(card, config, shape, work, args, vllm)
    print(f"plan for {card.label}: {card.memory_gib} GiB, {card.peak_tflops:g} TFLOPS bf16 dense, {card.bandwidth_tbs} TB/s")
    print(f"model: Llama-2-7B shape, {shape.total / 1e9:.2f}B parameters (N for MFU {shape.n_mfu / 1e9:.2f}B)")
    print(f"{'row':<10} {'workload':<38} {'GiB':>6} {'budget s':>9}  how")
    total = 0.0
    for need in needs:
        state = "" if need.fits else f"DOES NOT FIT in {card.memory_gib} GiB; "
        if need.runs:
            total += need.seconds
        print(f"{need.key:<10} {need.workload:<38} {need.gib:>6.1f} {need.seconds:>9.0f}  {state}{need.how}")
    verdict = "within" if total <= args.budget_s else "OVER"
    print(f"total budget: {total:.0f} s, {verdict} --budget-s {args.budget_s:.0f}")
    return 0 if total <= args.budget_s else 1


# --- the rows, on a GPU ---------------------------------------------------------------------------


def build_checkpoint(folder: Path, tokenizer) -> None:
    """Random Llama-2-7B-shaped bf16 weights and `tokenizer` on disk, and a random QLoRA adapter."""
    import torch
    from transformers import AutoModelForCausalLM

    config = llama2_7b_config(
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id
    )
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del model
    _free()
    write_random_adapter(folder / "qlora-adapter", folder, config)


def write_random_adapter(out: Path, base: Path, config) -> None:
    """A LoRA adapter of the llama2-7b-qlora preset's shape on `base`, with random weights."""
    import torch
    from safetensors.torch import save_file

    from saftool.presets import PRESETS
    from saftool.train import lora_config

    preset = PRESETS["llama2-7b-qlora"]
    adapter = lora_config(preset)
    adapter.base_model_name_or_path = str(base)
    adapter.save_pretrained(str(out))
    generator = torch.Generator().manual_seed(1)
    tensors = {}
    for layer in range(config.num_hidden_layers):
        for target in preset.lora_target_modules:
            name = f"base_model.model.model.layers.{layer}.self_attn.{target}"
            tensors[f"{name}.lora_A.weight"] = torch.randn(preset.lora_r, config.hidden_size, generator=generator) * 0.01
            tensors[f"{name}.lora_B.weight"] = torch.randn(config.hidden_size, preset.lora_r, generator=generator) * 0.01
    save_file(tensors, str(out / "adapter_model.safetensors"))


def training_items(n: int, texts: list[str]):
    """`n` examples each longer than any cutoff here, so every one is cut to `--seq-len` tokens; the
    prompt is short, so the cut leaves answer tokens to train on (TRL drops examples that have none)."""
    from saftool.records import Item

    long = " ".join(texts)[:6000]
    return [
        Item(id=f"bench-{i}", instruction="Continue the text.", output=long[i % 100 :], kind="benign", source="bench")
        for i in range(n)
    ]


def train_row(folder: Path, method: str, shape: Shape, texts: list[str], args, device: str = "cuda") -> Row:
    """A training step of `saftool train`'s own trainer (see the module docstring); `device` "cpu"
    runs the same code on a small model in tests."""
    from transformers import TrainerCallback

    from saftool.presets import resolve_config
    from saftool.train import check_base_model, make_trainer

    config = resolve_config(
        f"llama2-7b-{method}",
        base_model=str(folder),
        device=device,
        batch_size=args.micro_batch,
        effective_batch=args.micro_batch,  # one optimizer step per micro-batch, as the row times
        max_length=args.seq_len,
        save_steps=10**6,
        logging_steps=10**6,
    )
    steps = WARMUP_STEPS + args.steps
    items = training_items(steps * args.micro_batch, texts)
    clock: dict[str, float] = {}

    class Clock(TrainerCallback):
        def on_step_begin(self, targs, state, control, **kwargs):
            if state.global_step == WARMUP_STEPS:
                _synchronize(device)
                clock["start"] = time.perf_counter()

        def on_train_end(self, targs, state, control, **kwargs):
            _synchronize(device)
            clock["end"] = time.perf_counter()

    tokenizer = check_base_model(config, str(folder))
    with tempfile.TemporaryDirectory(prefix=f"ckpt-{method}-") as ckpt:
        _reset_peak(device)
        trainer = make_trainer(config, items, str(folder), Path(ckpt), device == "cuda", 1, 1, None, tokenizer)
        trainer.args.max_steps = steps
        trainer.add_callback(Clock())
        trainer.train()
        peak = _peak_gib(device)
        del trainer
    rate = args.steps * args.micro_batch * args.seq_len / (clock["end"] - clock["start"])
    return Row(method, f"{method} train step (batch {args.micro_batch}x{args.seq_len})", rate,
               FLOPS_PER_TOKEN[method] * shape.n_mfu, peak)


def generation_row(
    model: str, key: str, label: str, prompts, shape: Shape, args, texts_out: dict, device: str = "cuda"
) -> Row:
    """Throughput of a runtime on the prompts; its greedy text on the first SAME_TEXT_PROMPTS goes to
    `texts_out`. `device` "cpu" runs the same code on a small model in tests."""
    from saftool.records import GenerationConfig
    from saftool.runtimes import load_runtime

    backend = "vllm" if key == "vllm" else "hf"
    nf4 = {"load_in_4bit": True} if key == "hf-nf4" else {}  # an hf option; vllm takes none such
    runtime = load_runtime(backend, model, device=device, batch_size=len(prompts), max_memory=args.max_memory, **nf4)
    generation = GenerationConfig(max_new_tokens=args.new_tokens)
    list(runtime.generate(prompts[:8], GenerationConfig(max_new_tokens=4)))  # warm-up: weights, kernels
    _reset_peak(device)
    started = time.perf_counter()
    tokens = sum(c.completion_tokens for _, c in runtime.generate(prompts, generation))
    rate = tokens / (time.perf_counter() - started)
    peak = _peak_gib(device)
    texts = dict(runtime.generate(prompts[:SAME_TEXT_PROMPTS], GenerationConfig(max_new_tokens=32)))
    texts_out[key] = [texts[i].text for i in range(len(texts))]
    del runtime
    note = ""
    if backend == "vllm":  # its engine runs in a process of its own, out of this one's allocator's sight
        peak, note = None, "peak: vLLM preallocates --max-memory of the card"
    return Row(key, label, rate, FLOPS_PER_TOKEN["generate"] * shape.n_mfu, peak, note)


def same_text_row(texts: dict) -> Row:
    if "hf" not in texts or "vllm" not in texts:
        return Row("same-text", "same greedy text, hf vs vllm", note="needs both the hf and the vllm row")
    same = sum(a == b for a, b in zip(texts["hf"], texts["vllm"]))
    return Row("same-text", "same greedy text, hf vs vllm", note=f"{same}/{len(texts['hf'])} prompts identical")


def long_prompt_row(folder: Path, shape: Shape) -> Row:
    """The hf runtime's KV bound on one LONG_PROMPT_TOKENS prompt (see the module docstring)."""
    import torch
    from transformers import AutoTokenizer

    from saftool.records import GenerationConfig
    from saftool.runtimes import Prompt, load_runtime
    from saftool.runtimes.local import free_memory

    tokenizer = AutoTokenizer.from_pretrained(folder)
    words = " ".join(f"w{i % 997}" for i in range(LONG_PROMPT_TOKENS * 2))
    prompt = Prompt(tokenizer.decode(tokenizer(words)["input_ids"][:LONG_PROMPT_TOKENS]))
    # the budget is a share of the memory left free once the bf16 weights are in
    free_after_weights = free_memory(torch.device("cuda")) - 2 * shape.total
    row_bytes = (LONG_PROMPT_TOKENS + 200) * shape.kv_bytes_per_token
    share = min(1.0, 1.5 * row_bytes / free_after_weights)
    runtime = load_runtime("hf", str(folder), device="cuda", max_memory=share)
    _ = runtime.model  # the weights, loaded before the peak is reset
    loaded = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    completion = next(iter(runtime.generate([prompt], GenerationConfig(max_new_tokens=16))))[1]
    above = (torch.cuda.max_memory_allocated() - loaded) / GiB
    budget = share * free_after_weights / GiB
    del runtime
    return Row(
        "hf-kv",
        f"hf KV bound, {completion.prompt_tokens:,}-token prompt",
        peak_gib=above,
        note=f"{'PASS' if above <= budget + 2.0 else 'FAIL'}: {above:.1f} GiB above the weights, budget "
        f"{budget:.1f} GiB (--max-memory {share:.3f}) + 2 GiB activations",
    )


def _free() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _synchronize(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _reset_peak(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device: str) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / GiB if device == "cuda" else None


def guarded(key: str, workload: str, measure: Callable[[], Row], total_gib: float) -> Row:
    """`measure()`'s row, or the row's error in its note: the next row runs either way."""
    import torch

    try:
        return measure()
    except torch.cuda.OutOfMemoryError:
        return Row(key, workload, note=f"does not fit in {total_gib:.0f} GiB (OutOfMemoryError)")
    except Exception as exc:  # noqa: BLE001 - any failure is this row's result, printed in it
        first = (str(exc).strip().splitlines() or [""])[0][:160]
        return Row(key, workload, note=f"ERROR {type(exc).__name__}: {first}")
    finally:
        _free()


def versions() -> str:
    import torch

    found = [f"saftool {_version('saftool') or 'checkout'}"]
    for lib in LIBRARIES:
        version = _version(lib)
        if version:
            found.append(f"{lib} {version}")
    found.append(f"CUDA {torch.version.cuda}")
    return ", ".join(found)


def _version(lib: str) -> str | None:
    try:
        return importlib.metadata.version(lib)
    except importlib.metadata.PackageNotFoundError:
        return None


def driver_version() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def run(args) -> int:
    import torch

    started = time.perf_counter()
    name = torch.cuda.get_device_name(0)
    total_gib = torch.cuda.get_device_properties(0).total_memory / GiB
    found = find_card(name)
    card = Card("found", name, "", args.peak_tflops or (found.peak_tflops if found else 0.0), total_gib,
                found.bandwidth_tbs if found else 2.0)
    peak = card.peak_tflops or None
    vllm = importlib.util.find_spec("vllm") is not None
    config = llama2_7b_config()
    shape = Shape.of(config)
    work = Workload.of(args.prompts)
    # an unknown card gets no MFU, but its rows still need budgets: an A100's rate, a modest one
    budget_card = replace(card, peak_tflops=card.peak_tflops or UNKNOWN_CARD_TFLOPS)
    budgets = {need.key: need for need in plan(budget_card, config, shape, work, args, vllm)}
    print(f"card: {name}, {total_gib:.1f} GiB; driver {driver_version()}; "
          f"peak {f'{peak:g} TFLOPS bf16 dense' if peak else 'unknown (pass --peak-tflops): no MFU'}")
    print(f"libraries: {versions()}")
    print(f"model: Llama-2-7B shape, {shape.total / 1e9:.2f}B parameters (N for MFU {shape.n_mfu / 1e9:.2f}B), "
          f"random weights; budget {args.budget_s:.0f} s")
    print(HEADER, flush=True)

    prompts, texts = work.prompts, work.texts
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="llama7b-") as tmp:
        folder = Path(tmp)
        try:
            build_checkpoint(folder, work.tokenizer)
        except Exception as exc:  # noqa: BLE001 - no row can run without the checkpoint: say why, stop
            print(f"build: ERROR {type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:160]}")
            return 1
        answers: dict[str, list[str]] = {}
        measures: list[tuple[str, Callable[[], Row]]] = [
            *((m, lambda m=m: train_row(folder, m, shape, texts, args)) for m in ("qlora", "lora", "full")),
            ("hf", lambda: generation_row(str(folder), "hf", budgets["hf"].workload, prompts, shape, args, answers)),
            ("hf-nf4", lambda: generation_row(str(folder / "qlora-adapter"), "hf-nf4", budgets["hf-nf4"].workload,
                                              prompts[: args.nf4_prompts], shape, args, answers)),
            ("vllm", lambda: generation_row(str(folder), "vllm", budgets["vllm"].workload, prompts, shape, args, answers)),
            ("same-text", lambda: same_text_row(answers)),
            ("hf-kv", lambda: long_prompt_row(folder, shape)),
        ]
        for key, measure in measures:
            need = budgets.get(key)
            workload = need.workload if need else "same greedy text, hf vs vllm"
            left = args.budget_s - (time.perf_counter() - started)
            if need is not None and not need.runs:
                row = Row(key, workload, note="vllm not installed (pip install 'saftool[vllm]')")
            elif need is not None and need.seconds > left:
                row = Row(key, workload, note=f"skipped: {left:.0f} s of the budget left, the row's is {need.seconds:.0f} s")
            else:
                row = guarded(key, workload, measure, total_gib)
            rows.append(row)
            print(format_row(row, peak), flush=True)
    print(f"wall time: {time.perf_counter() - started:.0f} s")
    print(key_ratio(rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    from saftool.presets import PRESETS

    study = PRESETS["llama2-7b-lora"]  # the train rows step at the study's micro-batch and cutoff
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--micro-batch", type=int, default=study.batch_size)
    parser.add_argument("--seq-len", type=int, default=study.max_length)
    parser.add_argument("--prompts", type=int, default=512)
    parser.add_argument("--nf4-prompts", type=int, default=256, help="Prompts of the hf-nf4 row (bitsandbytes is slower).")
    parser.add_argument("--new-tokens", type=int, default=100)
    parser.add_argument("--max-memory", type=float, default=0.8, help="The hf and vllm rows' --max-memory.")
    parser.add_argument("--peak-tflops", type=float, help="The card's dense bf16 peak [default: from CARDS].")
    parser.add_argument("--budget-s", type=float, default=600.0, help="Skip rows whose budget would overrun this.")
    parser.add_argument("--plan", action="store_true", help="Print the rows, their memory and time budgets on --card; no GPU needed.")
    parser.add_argument("--card", choices=[c.key for c in CARDS], default="h100", help="The card --plan is for.")
    parser.add_argument("--vllm", action=argparse.BooleanOptionalAction, default=None,
                        help="Whether --plan counts the vllm row [default: whether vllm is installed].")
    args = parser.parse_args(argv)
    if args.plan:
        card = next(c for c in CARDS if c.key == args.card)
        vllm = args.vllm if args.vllm is not None else importlib.util.find_spec("vllm") is not None
        return print_plan(card, llama2_7b_config(), args, vllm)

    import torch

    if not torch.cuda.is_available():
        print("bench/gpu/acceptance.py needs a CUDA GPU; none is visible (--plan runs without one)", file=sys.stderr)
        return 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
