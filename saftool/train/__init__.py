"""`train`: supervised fine-tuning on a mix with TRL's SFTTrainer (full, LoRA or QLoRA).

* Every item becomes a prompt-completion pair: the prompt is `template.format_prompt` (the Alpaca
  template `infer` uses too), the completion the item's output plus EOS; the loss covers the
  completion tokens only. With `template="chat"` the pair is a conversation that TRL renders with
  the base tokenizer's own chat template (`template.chat_messages` for the user turn, the answer
  as the assistant turn); the loss covers the assistant's tokens only.
* Bad settings (an accumulation that does not divide, LoRA targets the architecture lacks, a chat
  template the tokenizer lacks, QLoRA under sharding without CUDA) fail before any weights load
  and before a checkpoint folder exists.
* Checkpoints go to `store/models/.NAME.ckpt/` every `save_steps`; `resume=True` continues from
  the newest one after a kill. The model directory `store/models/NAME/` appears in one rename, only
  once training finished: weights (or a PEFT adapter naming its base), tokenizer, `train_run.json`.
* Nothing assumes one device: the Trainer places the model, so `accelerate launch` (DDP, FSDP or
  DeepSpeed from accelerate's config, `examples/accelerate/`) runs the same code on several GPUs.
  `effective_batch` fixes the global batch whatever the number of processes. The final save
  gathers the full weights (or the adapter) from FSDP shards, and a model directory is registered
  only when its weights are there; `resume` knows FSDP's and DeepSpeed's checkpoint layouts.
* A second process training the same model name meanwhile is refused, naming the first
  (`io.output_lock`).
* One rich progress bar on stderr; TRL's, datasets' and transformers' own bars and logs are off.

Modules: `run` (`train()`, the run itself), `checks` (bad settings, before any weights load),
`loading` (base model and tokenizer), `trainer` (the SFTTrainer, LoRA config, bf16 default, lean
loss), `collate` (training texts, dataset, row-packing collator), `checkpoints` (checkpoint
layouts, completeness, final save), `session` (threads, quiet libraries, progress bar).
"""

from saftool.train.checkpoints import CKPT_STATE, checkpoint_complete, checkpoint_dir, weights_complete
from saftool.train.checks import check_base_model, sharding_kind, targetable_modules
from saftool.train.collate import prompt_completion_dataset, training_texts
from saftool.train.run import train
from saftool.train.trainer import default_bf16, lora_config, make_trainer

__all__ = [
    "CKPT_STATE",
    "check_base_model",
    "checkpoint_complete",
    "checkpoint_dir",
    "default_bf16",
    "lora_config",
    "make_trainer",
    "prompt_completion_dataset",
    "sharding_kind",
    "targetable_modules",
    "train",
    "training_texts",
    "weights_complete",
]
