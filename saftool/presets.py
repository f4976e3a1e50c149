"""Training configuration and its named presets.

A `TrainConfig` describes a training run completely; its hash names the run in `train_run.json`
and decides whether `train` may skip a finished run or resume a checkpoint. A preset is a
`TrainConfig`; flags override single fields (`resolve_config`).

Presets (the README's GPU section has them as a table):

* `llama2-7b-qlora`, `llama2-7b-lora`: the study's setting on a GPU, with the defaults of
  Safety-Tuned LLaMAs (Bianchi et al., 2024), which trained with the alpaca-lora recipe: LoRA r 8,
  alpha 16, dropout 0.05 on q_proj and v_proj, 3 epochs, learning rate 3e-4 with 100 warm-up steps,
  cutoff 256 tokens, global batch 128 (micro-batch 4, accumulation fitted to the processes). QLoRA
  loads the base in 4-bit NF4 (bitsandbytes, double quantisation, bf16 compute); LoRA in bf16.
* `llama2-7b-full`: full fine-tuning of Llama-2-7B with Stanford Alpaca's published
  hyperparameters (tatsu-lab/stanford_alpaca README and train.sh): lr 2e-5, cosine schedule with
  3% warm-up, no weight decay, 3 epochs, global batch 128; cutoff 256 as in the study (Alpaca: 512).
  It needs FSDP or ZeRO-3 on several GPUs (fp32 weights plus AdamW states are ~112 GB):
  `examples/accelerate/fsdp.yaml`.
* `llama3-8b-instruct-lora`: LoRA on Llama-3-8B-Instruct in its own chat format, with Meta's
  fine-tuning recipe defaults (meta-llama/llama-cookbook `configs/training.py`, `configs/peft.py`):
  LoRA r 8, alpha 32, dropout 0.05 on q_proj and v_proj, lr 1e-4, no weight decay, 3 epochs.
  Meta decays the rate x0.85 per epoch (StepLR); transformers has no per-epoch step schedule, so
  the preset decays linearly. Global batch 128 and cutoff 256 as in the study, so the mixes compare.
* `smollm2-135m-lora`: LoRA on the top 10 layers of SmolLM2-135M-Instruct (the store model
  `smollm2-135m`), the default grid of `saftool run` on a CPU. Its settings are the probes' (README,
  "Probes that chose the settings"): the study's recipe made for a few hundred steps on a 135M
  model, not copied from a paper.
* `tiny`: a ~1M-parameter Llama the tool builds (random init, byte-level BPE trained on the mix)
  and trains in full from scratch on the CPU: about 100 s for a 3,000-example mix on 2 cores.
* `smoke`: a much smaller build for tests: seconds.

`--base-model` without `--preset` never takes the tiny model's settings (its lr 3e-3 and weight
decay 1.0 diverge on a pretrained model): it starts from `BASE_DEFAULTS` for the method, the
study's LoRA settings for lora/qlora (the default method) and the Alpaca ones for full. Their
warm-up is a fraction of the run (the study's 100 of about 1,200 steps), not 100 steps: a short run
on a small base would otherwise end before its warm-up does.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from saftool.errors import UsageError
from saftool.tiny import TinySpec

Method = Literal["full", "lora", "qlora"]
Device = Literal["auto", "cpu", "cuda"]
Template = Literal["alpaca", "chat"]


class TrainConfig(BaseModel):
    """Everything that decides what `train` produces."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_model: str | None = Field(
        default=None,
        description="Hub id or local directory of the base model; null builds a tiny Llama from `tiny`.",
    )
    tiny: TinySpec | None = Field(default=None, description="Shape of the tool-built model (when base_model is null).")
    method: Method = Field(default="full", description="full fine-tuning, LoRA, or QLoRA (4-bit NF4 + LoRA).")
    epochs: float = Field(default=3.0, gt=0)
    lr: float = Field(default=3e-4, gt=0, description="Peak learning rate (AdamW).")
    lr_scheduler: str = Field(default="linear", description="transformers scheduler name: linear, cosine, constant...")
    warmup_steps: float = Field(default=0, ge=0, description="Warm-up steps; below 1, a fraction of all steps.")
    weight_decay: float = Field(default=0.0, ge=0)
    batch_size: int = Field(default=4, ge=1, description="Examples per device per step (micro-batch).")
    grad_accum: int = Field(default=1, ge=1, description="Micro-batches per optimizer step (when effective_batch is unset).")
    effective_batch: int | None = Field(
        default=None,
        ge=1,
        description="Examples per optimizer step over all processes; the accumulation steps follow from it "
        "(effective_batch / (processes x batch_size)), so the global batch stays fixed on any number of GPUs.",
    )
    max_length: int = Field(default=256, ge=8, description="Cutoff: tokens per example (prompt + answer).")
    seed: int = 0
    lora_r: int = Field(default=8, ge=1)
    lora_alpha: int = Field(default=16, ge=1)
    lora_dropout: float = Field(default=0.05, ge=0, lt=1)
    lora_target_modules: tuple[str, ...] = Field(default=("q_proj", "v_proj"))
    lora_layers: int | None = Field(
        default=None,
        ge=1,
        description="LoRA on the top N decoder layers only (null: every layer). The layers below are frozen "
        "whole, so a one-process CPU run computes their output once per example and reuses it every epoch.",
    )
    template: Template = Field(
        default="alpaca",
        description="Prompt format: the study's Alpaca template, or the base tokenizer's own chat template.",
    )
    system: str | None = Field(default=None, description="System message of the chat template (template chat only).")
    train_on_prompt: bool = Field(
        default=False,
        description="Also put the loss on the prompt tokens (alpaca-lora's train_on_inputs); off: answers only.",
    )
    padding_free: bool = Field(
        default=False,
        description="Pack examples into max_length rows without padding; a block-diagonal mask (or "
        "FlashAttention's varlen kernel) keeps every example from attending to another. Fastest on GPUs.",
    )
    group_by_length: bool = Field(
        default=True, description="Batch examples of similar length together (less padding)."
    )
    gradient_checkpointing: bool | None = Field(default=None, description="null: on where a GPU trains.")
    bf16: bool | None = Field(
        default=None, description="null: on where the GPU supports bf16, and for a base model on a bf16-capable CPU."
    )
    device: Device = Field(default="auto", description="auto (a GPU if visible), cpu, or cuda (an error without one).")
    save_steps: int = Field(default=100, ge=1, description="Optimizer steps between resumable checkpoints.")
    logging_steps: int = Field(default=10, ge=1, description="Optimizer steps between loss-curve points.")

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.effective_batch is not None and self.grad_accum != 1:
            raise ValueError("give effective_batch or grad_accum, not both")
        if self.system is not None and self.template != "chat":
            raise ValueError("a system message needs template chat")
        if self.lora_layers is not None and self.method == "full":
            raise ValueError("lora_layers needs method lora or qlora")
        return self

    def accumulation_steps(self, processes: int) -> int:
        """Micro-batches per optimizer step when `processes` processes each take `batch_size` examples."""
        if self.effective_batch is None:
            return self.grad_accum
        per_step = processes * self.batch_size
        if self.effective_batch % per_step:
            raise UsageError(
                f"--effective-batch {self.effective_batch} is not divisible by {processes} process(es) x "
                f"--batch-size {self.batch_size} = {per_step}"
            )
        return self.effective_batch // per_step


# What all three GPU recipes share: 3 epochs (each source's own), and the study's global batch 128
# (micro-batch 4), cutoff 256 and checkpoint interval, so runs of the three on one mix compare
_STUDY_RUN: dict[str, Any] = dict(
    epochs=3.0,
    batch_size=4,
    effective_batch=128,
    max_length=256,
    group_by_length=False,
    save_steps=50,
)
# Safety-Tuned LLaMAs (alpaca-lora's recipe): see the module docstring
_STUDY_LORA: dict[str, Any] = dict(
    _STUDY_RUN,
    lr=3e-4,
    warmup_steps=100,
    lora_r=8,
    lora_alpha=16,
    lora_dropout=0.05,
    lora_target_modules=("q_proj", "v_proj"),
)
# Stanford Alpaca's full fine-tuning: lr 2e-5, cosine, warm-up ratio 0.03, no weight decay
_ALPACA_FULL: dict[str, Any] = dict(
    _STUDY_RUN,
    method="full",
    lr=2e-5,
    lr_scheduler="cosine",
    warmup_steps=0.03,
    weight_decay=0.0,
)
# meta-llama/llama-cookbook's fine-tuning defaults: see the module docstring
_META_LORA: dict[str, Any] = dict(
    _STUDY_RUN,
    method="lora",
    template="chat",
    lr=1e-4,
    weight_decay=0.0,
    lora_r=8,
    lora_alpha=32,
    lora_dropout=0.05,
    lora_target_modules=("q_proj", "v_proj"),
)
# the default base of `saftool run`: a store model (`saftool model pull smollm2-135m`)
SMOLLM2 = "smollm2-135m"
_LLAMA2 = dict(base_model="meta-llama/Llama-2-7b-hf", device="cuda")

# The study's warm-up as a share of its run: 100 steps of 52,002 x 3 epochs / 128 = 1,219 steps. A
# base model without a preset is any size and any data: a fraction fits a 30-step run and a 3,000-step one
_STUDY_LORA_ANY_LENGTH = dict(_STUDY_LORA, warmup_steps=0.08)
# what `--base-model` without `--preset` starts from, by method (lora when no method is given)
BASE_DEFAULTS: dict[str, TrainConfig] = {
    "lora": TrainConfig(method="lora", **_STUDY_LORA_ANY_LENGTH),
    "qlora": TrainConfig(method="qlora", **_STUDY_LORA_ANY_LENGTH),
    "full": TrainConfig(**_ALPACA_FULL),
}

PRESETS: dict[str, TrainConfig] = {
    "llama2-7b-qlora": TrainConfig(method="qlora", **_STUDY_LORA, **_LLAMA2),
    "llama2-7b-lora": TrainConfig(method="lora", **_STUDY_LORA, **_LLAMA2),
    "llama2-7b-full": TrainConfig(**_ALPACA_FULL, **_LLAMA2),
    "llama3-8b-instruct-lora": TrainConfig(
        **_META_LORA, base_model="meta-llama/Meta-Llama-3-8B-Instruct", device="cuda"
    ),
    # the study's LoRA (r 8, alpha 16, dropout 0.05, cutoff 256) with what a 135M model on a CPU grid
    # changes: every linear layer, a higher rate, 2 epochs of small batches, a warm-up fraction
    "smollm2-135m-lora": TrainConfig(
        **dict(
            _STUDY_LORA,
            base_model=SMOLLM2,
            method="lora",
            epochs=2.0,
            lr=1e-3,
            warmup_steps=0.05,
            batch_size=8,
            effective_batch=16,
            lora_target_modules=("all-linear",),
            # LoRA on the top 10 of 30 layers: the 20 below are frozen, their output computed once per
            # example, and a training takes 213 s instead of 483 (harm100, 1 thread); on 60-prompt
            # subsets it refused what the all-layer model did (README, probe p14)
            lora_layers=10,
            group_by_length=True,
            # SmolLM2-135M-Instruct was tuned in its chat template, and its own answers are the base set:
            # asked in Alpaca's, its answers to the built-in instructions with an input were mostly "The
            # answer to this question is:" and nothing more; asked in chat, it answered them
            template="chat",
        )
    ),
    "tiny": TrainConfig(
        # vocab 2048: on the 2,950-example bench mix BPE runs out of merges at ~1,900, so a word is
        # its first letter plus one rest token (tiny.train_tokenizer) wherever it stands. Tied
        # embeddings let a head copy a prompt token into the answer (repeat, list_item, join).
        tiny=TinySpec(vocab_size=2048, initializer_range=0.08),
        method="full",
        # bench/tiny_quality.py, held-out EM: 64.5%, 55.5%, 60.5%, 62.5% (seeds 0-3). Seed 0 without
        # tying: 49.0% (copy families 0-9%); without weight decay: 55.5%, seed 1 51.0% (decay keeps
        # the model from answering a held-out word from memory: train loss 0.13 vs 0.06 at vocab 512);
        # the old preset (vocab 512, words pre-split whole, untied, no decay): 46.5%. 8 epochs at
        # batch 32, lr 3e-3 as before (old preset: lr 2e-3 gave 43.5%; 3 epochs at batch 16 left
        # even the training copy tasks unfit). Fewer tokens than the old preset (665k vs 766k):
        # 105 s at load 2.2 on the shared 2-core box (old: 101 s at load 1.6); side by side, 185 s
        # vs 198 s.
        epochs=8.0,
        lr=3e-3,
        lr_scheduler="cosine",
        warmup_steps=30,
        weight_decay=1.0,
        batch_size=32,
        max_length=128,
        # length-grouped batches hold one task family each (the families differ in length) and the
        # model then learns one family at a time; random batches learn all of them much faster
        group_by_length=False,
        save_steps=100,
        logging_steps=25,
    ),
    "smoke": TrainConfig(
        tiny=TinySpec(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, initializer_range=0.1),
        method="full",
        epochs=1.0,
        lr=3e-3,
        batch_size=16,
        max_length=128,
        save_steps=5,
        logging_steps=2,
    ),
}

DEFAULT_PRESET = "tiny"


def preset_names() -> list[str]:
    return list(PRESETS)


def starting_preset(preset: str | None, base_model: str | None) -> str | None:
    """The preset a run starts from: the one named; None for a base model given without one (it
    starts from `BASE_DEFAULTS`); else `DEFAULT_PRESET`."""
    if preset is None and not base_model:
        return DEFAULT_PRESET
    return preset


class TrainJob(BaseModel):
    """What `saftool train` is asked to train, beside the `TrainConfig` fields its other options
    override: the mix, the model's name, the preset it starts from, its seed and base model. The
    command takes these options from here, and the run plan renders one into train's argv
    (`saftool.stageconfig`), in the order declared here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mix: str = Field(description="Mix name in the store (or a JSONL file of items).")
    name: str | None = Field(default=None, description="Register the model under this name [default: the mix's name].")
    preset: str | None = Field(default=None, description="Starting settings [default: see `starting_preset`].")
    seed: int | None = Field(default=None, description="Random seed (init, data order, dropout) [default: the preset's].")
    base_model: str | None = Field(default=None, description="Hub id or local directory [default: the preset's].")


def resolve_config(preset: str | None = None, **overrides: Any) -> TrainConfig:
    """The preset with every non-None override applied, validated.

    Without a preset: `BASE_DEFAULTS` for the method when a base model is given, else `tiny`.
    """
    overrides = {key: value for key, value in overrides.items() if value is not None}
    name = starting_preset(preset, overrides.get("base_model"))
    if name is None:
        method = overrides.get("method", "lora")
        if method not in BASE_DEFAULTS:
            raise UsageError(f"bad training setting method: choose one of {', '.join(BASE_DEFAULTS)}")
        start = BASE_DEFAULTS[method]
    else:
        if name not in PRESETS:
            raise UsageError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
        start = PRESETS[name]
    data = start.model_dump()
    # a flag for one way of sizing the optimizer step replaces the preset's other way
    if "grad_accum" in overrides and "effective_batch" not in overrides:
        data["effective_batch"] = None
    if "effective_batch" in overrides and "grad_accum" not in overrides:
        data["grad_accum"] = 1
    data.update(overrides)
    if data.get("base_model"):
        data["tiny"] = None
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        if not field:  # a rule across settings (`_consistent`): its own words name them
            raise UsageError(f"bad training settings: {first['msg'].removeprefix('Value error, ')}") from None
        raise UsageError(f"bad training setting {field}: {first['msg']}") from None
