"""`saftool train`: fine-tune on a mix from the store."""

from __future__ import annotations

import os

import typer

from saftool import presets
from saftool.presets import TrainJob
from saftool.stageconfig import option


def train(
    ctx: typer.Context,
    mix: str = option(TrainJob, "mix"),
    name: str = option(TrainJob, "name"),
    preset: str = option(
        TrainJob, "preset", help="Starting settings, one of: "
        f"{', '.join(presets.preset_names())}. tiny builds a ~1M-parameter Llama and trains it on the CPU; "
        "smoke a much smaller one for tests; the llama2/llama3 ones are GPU settings with published sources. "
        "Training options left unset keep the preset's value. [default: tiny; with --base-model, the "
        "real-model defaults of the method: the study's LoRA settings, or Alpaca's for full]",
        show_default=False,
    ),
    base_model: str = option(TrainJob, "base_model"),
    method: str = typer.Option(None, "--method", help="full, lora or qlora (4-bit NF4 + LoRA)."),
    epochs: float = typer.Option(None, "--epochs", help="Passes over the mix."),
    lr: float = typer.Option(None, "--lr", help="Peak learning rate."),
    batch_size: int = typer.Option(None, "--batch-size", help="Examples per device per step."),
    grad_accum: int = typer.Option(None, "--grad-accum", help="Micro-batches per optimizer update (global batch: batch size x this x processes)."),
    effective_batch: int = typer.Option(
        None, "--effective-batch", help="Examples per optimizer update over all processes; the accumulation "
        "steps follow (N / (processes x batch size)), so the global batch is the same on any number of GPUs."
    ),
    max_length: int = typer.Option(None, "--max-length", help="Cutoff in tokens (prompt + answer)."),
    seed: int = option(TrainJob, "seed", help="Random seed (init, data order, dropout)."),
    lora_r: int = typer.Option(None, "--lora-r", help="LoRA rank (the adapter's inner width)."),
    lora_alpha: int = typer.Option(None, "--lora-alpha", help="LoRA scale numerator: the adapter's update is scaled by alpha / rank."),
    lora_dropout: float = typer.Option(None, "--lora-dropout", help="Dropout on the LoRA adapter's input."),
    target_modules: str = typer.Option(None, "--target-modules", help="Comma-separated LoRA targets, e.g. q_proj,v_proj; all-linear for every linear layer."),
    lora_layers: int = typer.Option(
        None, "--lora-layers", help="LoRA on the top N decoder layers only [default: every layer]. The layers "
        "below are frozen; a CPU run computes their output once per example instead of every step."
    ),
    template: str = typer.Option(
        None, "--template", help="Prompt format: alpaca (the study's) or chat (the base tokenizer's chat template; "
        "the loss covers the assistant's tokens only)."
    ),
    system: str = typer.Option(None, "--system", help="System message for --template chat."),
    padding_free: bool = typer.Option(
        None, "--padding-free/--padded", help="Pack examples without padding (never attending across examples).", show_default=False
    ),
    device: str = typer.Option(None, "--device", help="auto (a GPU if one is visible), cpu, or cuda (an error without a GPU)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint of an interrupted run."),
    force: bool = typer.Option(False, "--force", help="Retrain even if this mix and config were already trained."),
) -> None:
    """Fine-tune a model on a mix with TRL (loss on the answers only) and register it in the store.

    Writes store/models/NAME/ (full weights or a PEFT adapter, tokenizer, train_run.json) only when
    training finished; checkpoints live in store/models/.NAME.ckpt/ for --resume. Prints the
    training-run record on stdout.

    Examples:

      saftool train --mix harm700                      # tiny preset, CPU, about a minute

      saftool train --mix harm700 --preset llama2-7b-qlora

      accelerate launch --config_file examples/accelerate/fsdp.yaml -m saftool train --mix harm700 --preset llama2-7b-full

      saftool train --mix harm700 --base-model ./Meta-Llama-3-8B-Instruct --template chat --effective-batch 128
    """
    from saftool.cli import get_store
    from saftool.io import write_records
    from saftool.train import train as train_lib

    job = TrainJob(mix=mix, name=name, preset=preset, seed=seed, base_model=base_model)
    config = presets.resolve_config(
        job.preset,
        base_model=job.base_model,
        method=method,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        grad_accum=grad_accum,
        effective_batch=effective_batch,
        template=template,
        system=system,
        max_length=max_length,
        seed=job.seed,
        lora_r=lora_r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        lora_target_modules=tuple(m.strip() for m in target_modules.split(",") if m.strip()) if target_modules else None,
        lora_layers=lora_layers,
        padding_free=padding_free,
        device=device,
    )
    record = train_lib(job.mix, config, name=job.name, store=get_store(ctx),
        preset=presets.starting_preset(job.preset, job.base_model), resume=resume, force=force)
    if os.environ.get("RANK", "0") == "0":  # under accelerate launch or torchrun: one record, the main process's
        write_records([record], "-")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
