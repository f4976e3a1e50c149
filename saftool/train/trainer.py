"""The trainer of a run: TRL's SFTTrainer with the run's arguments, the base loaded as the method
wants, the LoRA adapter config, bf16 by default where the hardware has it, and the lean loss of
one-process CPU runs."""

from __future__ import annotations

from pathlib import Path

from saftool.presets import TrainConfig
from saftool.records import Item
from saftool.train.collate import RowPackingCollator, prompt_completion_dataset
from saftool.train.frozen_prefix import (
    decoder_linear_names,
    decoder_stack,
    frozen_states,
    only_layers,
    top_layers,
)
from saftool.train.lean_lora import lean_lora_layers
from saftool.train.loading import load_model, load_tokenizer


def make_trainer(
    config: TrainConfig,
    items: list[Item],
    base_path: str,
    ckpt: Path,
    use_cuda: bool,
    processes: int,
    grad_accum: int,
    sharding: str | None = None,
    tokenizer=None,
):
    """The SFTTrainer of a run, its base loaded as the method wants (tests build one directly)."""
    from trl import SFTConfig, SFTTrainer

    bf16 = config.bf16 if config.bf16 is not None else default_bf16(config, use_cuda)
    checkpointing = config.gradient_checkpointing if config.gradient_checkpointing is not None else use_cuda
    tokenizer = tokenizer or load_tokenizer(config, base_path)
    # the arguments come before the model: under `accelerate launch` with DeepSpeed their
    # __post_init__ registers the DeepSpeed config with transformers (a weak reference `args` keeps
    # alive), and only then does from_pretrained see ZeRO-3 and build the model partitioned inside
    # deepspeed.zero.Init instead of every process loading all the weights into host memory
    args = SFTConfig(
        output_dir=str(ckpt),
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=grad_accum,
        learning_rate=config.lr,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_steps,
        weight_decay=config.weight_decay,
        max_length=config.max_length,
        seed=config.seed,
        data_seed=config.seed,
        completion_only_loss=not config.train_on_prompt,
        packing=config.padding_free,
        packing_strategy="bfd",
        padding_free=config.padding_free,
        train_sampling_strategy="group_by_length"
        if config.group_by_length and not config.padding_free
        else "random",
        bf16=bf16,
        fp16=False,
        gradient_checkpointing=checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if checkpointing else None,
        use_cpu=not use_cuda,
        logging_steps=config.logging_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=1,
        save_only_model=False,
        report_to=[],
        disable_tqdm=True,
        include_num_input_tokens_seen="non_padding",
        dataloader_pin_memory=use_cuda,
        trust_remote_code=False,
    )
    model = load_model(config, base_path, use_cuda, bf16, sharding)
    peft_config = lora_config(config, model) if config.method != "full" else None
    # the lean loss calls the model's own modules, which a DistributedDataParallel wrapper would bypass;
    # 4-bit bases keep TRL's path
    lean = not use_cuda and config.method != "qlora" and not config.padding_free and processes == 1
    trainer_cls = _lean_trainer_class(SFTTrainer) if lean else SFTTrainer
    collator = RowPackingCollator(tokenizer.pad_token_id, config.max_length) if lean else None
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=prompt_completion_dataset(items, config.template, config.system),
        processing_class=tokenizer,
        peft_config=peft_config,
        data_collator=collator,
    )
    if lean and peft_config is not None:
        lean_lora_layers(trainer.model)
        if config.lora_layers:
            trainer.frozen_layers = model.config.num_hidden_layers - config.lora_layers
            collator.frozen_states = frozen_states(
                trainer.model, trainer.train_dataset["input_ids"], trainer.frozen_layers, bf16
            )
    if lean and bf16:
        # torch's CPU flash-attention backward is slow in bf16 on short rows: fwd+bwd of 8 x 9 heads
        # x 130 positions took 34 ms, against 17 ms for the plain matmul-softmax-matmul (and 16 ms for
        # the flash kernel in float32); on SmolLM2-135M LoRA steps, eager attention was 14% faster
        trainer.model.set_attn_implementation("eager")
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)  # it prints log dicts to stdout, which carries records only
    trainer.remove_callback(ProgressCallback)
    return trainer


def default_bf16(config: TrainConfig, use_cuda: bool) -> bool:
    """bf16 autocast where the hardware multiplies bf16: a GPU that supports it, or, for a --base-model,
    a CPU with AMX-BF16 or AVX512-BF16 (a LoRA step on SmolLM2-135M: 440-560 tokens/s against 300-330
    in float32, ../shared/NOTES.md). The tool-built tiny models stay in float32, where per-op dispatch,
    not arithmetic, takes the time."""
    import torch

    if use_cuda:
        return torch.cuda.is_bf16_supported()
    from saftool.devices import cpu_has_bf16

    return config.base_model is not None and cpu_has_bf16()


def _lean_trainer_class(base):
    """SFTTrainer for one-process CPU runs (full or LoRA), without TRL's per-step extras.

    TRL's loss goes through its chunked log-prob head, which off Triton devices scores every position
    (prompt and padding too) and also computes entropy and top-1 accuracy for its metrics, each read
    back with `.item()` on every step. This one projects only the answer positions (labels != -100)
    through the LM head: the same loss, normalised the same way (by `num_items_in_batch`, the
    answer tokens of the optimizer step), with a quarter of the head's work on the tiny mix; on a
    real model's 49,152-token vocabulary the head is a fifth of the whole model's arithmetic.
    """
    import torch
    import torch.nn.functional as F

    class LeanSFTTrainer(base):
        frozen_layers = 0  # the lower layers whose output the batches carry, as `inputs_embeds`

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.pop("labels")
            # the decoder stack under the LM head (a PEFT model's LoRA layers sit inside it); called
            # directly, it is outside the autocast accelerate wraps around the model's forward, so
            # bf16 runs open their own (LoRA layers then take their bf16 inputs as they are)
            stack = decoder_stack(model)
            # a batch carrying the frozen layers' output runs only the layers above them
            first = self.frozen_layers if "inputs_embeds" in inputs else 0
            if first:
                inputs.pop("input_ids")
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.args.bf16), only_layers(stack, first):
                hidden = stack(**inputs, use_cache=False).last_hidden_state[:, :-1]
                targets = labels[:, 1:]
                mask = targets != -100
                logits = model.get_output_embeddings()(hidden[mask])
            loss = F.cross_entropy(logits.float(), targets[mask], reduction="sum")
            count = mask.sum() if num_items_in_batch is None else num_items_in_batch
            loss = loss / torch.as_tensor(count).clamp(min=1)
            return (loss, None) if return_outputs else loss

    return LeanSFTTrainer


def lora_config(config: TrainConfig, model=None):
    """The PEFT LoRA adapter of `config` (LoRA and QLoRA alike); `model`, the base, is needed for
    `lora_layers` only."""
    from peft import LoraConfig

    targets = list(config.lora_target_modules)
    layers = None
    if config.lora_layers:
        if model is None:
            raise ValueError("lora_layers needs the base model")
        layers = top_layers(config.lora_layers, model.config.num_hidden_layers)
        if targets == ["all-linear"]:  # PEFT takes a layer range only with the targets named
            targets = decoder_linear_names(model)
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules="all-linear" if targets == ["all-linear"] else targets,  # PEFT's word for every linear layer
        layers_to_transform=layers,
        task_type="CAUSAL_LM",
    )
