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
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import logging
import os
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from saftool import __version__, console
from saftool.devices import resolve_device
from saftool.errors import MissingDependencyError, SaftoolError, UsageError
from saftool.hashing import config_hash, file_sha256
from saftool.io import output_lock, read_json, read_records, write_json
from saftool.presets import TrainConfig
from saftool.records import Item, LossPoint, TrainRun
from saftool.store import Store, check_name
from saftool.template import chat_messages, format_prompt

CKPT_STATE = "saftool_ckpt.json"
_LIBRARIES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "tokenizers", "bitsandbytes")


def checkpoint_dir(store: Store, name: str) -> Path:
    """Where a run keeps its resumable checkpoints (and, for tool-built models, the base it built)."""
    return store.models / f".{check_name(name, 'model name')}.ckpt"


def train(
    mix: str,
    config: TrainConfig,
    *,
    name: str | None = None,
    store: Store | None = None,
    preset: str | None = None,
    resume: bool = False,
    force: bool = False,
) -> TrainRun:
    """Fine-tune on the mix `mix` (a store name, or a JSONL file of Items) and register the model as `name`.

    A finished model with the same config and mix is returned as is unless `force`. `resume`
    continues from the last checkpoint of an interrupted run with the same config and mix. While
    one process trains `name`, another asked to is refused with a `UsageError` naming it (pid and
    host): waiting would hold a second job for hours to retrain what the first one registers.
    """
    store = store or Store()
    name = check_name(name or _resolve_mix(store, mix)[1], "model name")
    # under accelerate launch or torchrun only the main process locks: the others belong to its run
    main = os.environ.get("RANK", "0") == "0"
    with output_lock(store.model_dir(name), wait=False) if main else contextlib.nullcontext():
        return _train(mix, config, name, store, preset, resume, force)


def _train(
    mix: str, config: TrainConfig, name: str, store: Store, preset: str | None, resume: bool, force: bool
) -> TrainRun:
    started = time.monotonic()
    mix_path, mix_name = _resolve_mix(store, mix)
    mix_sha = file_sha256(mix_path)
    cfg_dump = config.model_dump(mode="json")
    cfg_hash = config_hash(cfg_dump)

    final_dir = store.model_dir(name)
    done = _finished_run(final_dir)
    if done is not None and not force and done.config_hash == cfg_hash and done.mix_sha256 == mix_sha:
        console.info(f"model {name!r} is already trained from this mix and config; pass --force to retrain")
        return done
    # parsed only now: a rerun that skips (every finished stage of `saftool run`) needs just the hash
    items = list(read_records(mix_path, Item))
    if not items:
        raise SaftoolError(f"mix {mix_name!r} is empty ({mix_path}): nothing to train on")

    _check_method(config)
    use_cuda = resolve_device(config.device)
    base_path = _check_base(config, store)
    sharding = sharding_kind()
    _check_sharding(config, sharding, use_cuda)

    ckpt = checkpoint_dir(store, name)
    identity = {"config_hash": cfg_hash, "mix_sha256": mix_sha}

    with _quiet_libraries(), _cpu_threads(config, use_cuda):
        from accelerate import PartialState

        processes = PartialState(cpu=not use_cuda)
        grad_accum = config.accumulation_steps(processes.num_processes)
        tokenizer = None if base_path is None else check_base_model(config, base_path)
        # under `accelerate launch` or torchrun every process runs this: the main one prepares the
        # checkpoint folder (and builds a tiny base) first, the others then find both ready
        with processes.main_process_first():
            resume_from = _prepare_checkpoint_dir(ckpt, identity, resume, main=processes.is_main_process)
            if base_path is None:
                base_path = str(ckpt / "base")
                if not (ckpt / "base" / "config.json").exists():
                    from saftool.tiny import build_base

                    console.info(f"building a tiny Llama (random init, byte-level BPE) for {name!r}")
                    build_base(training_texts(items), config.tiny, base_path, seed=config.seed)
        trainer = make_trainer(
            config, items, base_path, ckpt, use_cuda, processes.num_processes, grad_accum, sharding, tokenizer
        )
        main = trainer.is_world_process_zero()
        clock = _SessionClock()
        with console.progress(f"train {name}", None) if main else contextlib.nullcontext() as bar:
            trainer.add_callback(_progress_callback(bar, clock))
            trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)

        staging = ckpt / "final"
        save_final_model(trainer, staging)  # collective under FSDP/DeepSpeed: every process calls it
        if not main:
            trainer.accelerator.wait_for_everyone()  # the main process writes the record and renames
            return read_json(final_dir / "train_run.json", TrainRun)
        if not weights_complete(staging):
            raise SaftoolError(
                f"training finished but the final save wrote no complete weights to {staging} "
                f"({', '.join(sorted(p.name for p in staging.iterdir())) if staging.is_dir() else 'no folder'}); "
                "nothing registered. Under DeepSpeed ZeRO-3 set stage3_gather_16bit_weights_on_model_save "
                "(examples/accelerate/deepspeed-zero3.yaml does)"
            )
        trainer.processing_class.save_pretrained(str(staging))
        (staging / "training_args.bin").unlink(missing_ok=True)  # a pickle; the run record holds the config
        state = trainer.state
        session_seconds = max(clock.seconds, 1e-9)
        record = TrainRun(
            name=name,
            mix=mix_name,
            mix_sha256=mix_sha,
            base_model=config.base_model or "saftool:tiny",
            method=config.method,
            preset=preset,
            config=cfg_dump,
            config_hash=cfg_hash,
            model_dir=str(final_dir),
            loss_curve=[
                LossPoint(step=int(e["step"]), epoch=float(e.get("epoch", 0.0)), loss=float(e["loss"]))
                for e in state.log_history
                if "loss" in e
            ],
            tokens_seen=int(state.num_input_tokens_seen),
            tokens_per_second=round((state.num_input_tokens_seen - clock.tokens_at_start) / session_seconds, 1),
            wall_seconds=round(time.monotonic() - started, 2),
            versions=_versions(config),
            template=config.template,
            system=config.system,
            processes=processes.num_processes,
            global_batch=processes.num_processes * config.batch_size * grad_accum,
        )
        write_json(record, staging / "train_run.json")
        if final_dir.exists():
            shutil.rmtree(final_dir)
        os.replace(staging, final_dir)
        shutil.rmtree(ckpt, ignore_errors=True)
        trainer.accelerator.wait_for_everyone()
    console.info(
        f"trained {name!r}: {record.tokens_seen} tokens, {record.tokens_per_second:.0f} tok/s, "
        f"{record.wall_seconds:.0f}s -> {final_dir}"
    )
    return record


def _resolve_mix(store: Store, mix: str) -> tuple[Path, str]:
    path = Path(mix)
    if mix.endswith(".jsonl") and path.is_file():
        return path, path.stem
    return store.require_mix(mix), mix


def _finished_run(model_dir: Path) -> TrainRun | None:
    path = model_dir / "train_run.json"
    if not path.is_file():
        return None
    try:
        return read_json(path, TrainRun)
    except SaftoolError:
        return None


def _check_method(config: TrainConfig) -> None:
    if config.base_model is None and config.method != "full":
        raise UsageError(
            f"--method {config.method} needs --base-model: the tiny presets build a fresh model and train it in full"
        )
    if config.base_model is None and config.template == "chat":
        raise UsageError("--template chat needs --base-model: the tool-built tiny model has no chat template")
    if config.method == "qlora" and importlib.util.find_spec("bitsandbytes") is None:
        raise MissingDependencyError("bitsandbytes", "QLoRA (--method qlora)")


def sharding_kind() -> str | None:
    """"fsdp" or "deepspeed" when `accelerate launch` shards the model (its config reaches every
    process in these variables, which accelerate itself reads), else None (one process or DDP)."""
    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true":
        return "fsdp"
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":
        return "deepspeed"
    return None


def _check_sharding(config: TrainConfig, sharding: str | None, use_cuda: bool) -> None:
    if config.method == "qlora" and sharding is not None and not use_cuda:
        raise UsageError(
            f"--method qlora under {'FSDP' if sharding == 'fsdp' else 'DeepSpeed'} needs CUDA GPUs: bitsandbytes "
            "shards 4-bit weights only there; on the CPU use one process or plain DDP"
        )


def check_base_model(config: TrainConfig, base_path: str):
    """Check the base fits the config without loading its weights; its tokenizer.

    The chat template comes from the tokenizer; the LoRA targets are checked against the layers of
    the architecture, built on the meta device (no memory, no weights read).
    """
    tokenizer = _load_tokenizer(config, base_path)
    if config.template == "chat" and not getattr(tokenizer, "chat_template", None):
        raise UsageError(
            f"--template chat: the tokenizer of {config.base_model!r} has no chat template "
            "(a base model, not an instruct one?); use --template alpaca"
        )
    if config.method != "full" and config.lora_target_modules != ("all-linear",):
        names = targetable_modules(config, base_path)
        missing = [t for t in config.lora_target_modules if not any(n == t or n.endswith(f".{t}") for n in names)]
        if missing:
            leaves = sorted({n.rsplit(".", 1)[-1] for n in names})
            raise UsageError(
                f"--target-modules {','.join(missing)}: no such layer in {config.base_model!r}; "
                f"LoRA can target: {', '.join(leaves)}"
            )
    return tokenizer


def targetable_modules(config: TrainConfig, base_path: str) -> list[str]:
    """Dotted names of the base's layers a LoRA adapter can wrap (linear, embedding, convolution)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.pytorch_utils import Conv1D

    try:
        model_config = AutoConfig.from_pretrained(base_path, trust_remote_code=False)
    except OSError as exc:
        raise _load_error(config, base_path, exc) from None
    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(model_config, trust_remote_code=False)
    kinds = (torch.nn.Linear, torch.nn.Embedding, torch.nn.Conv1d, torch.nn.Conv2d, Conv1D)
    return [name for name, module in skeleton.named_modules() if isinstance(module, kinds)]


def _check_base(config: TrainConfig, store: Store) -> str | None:
    """The local base directory (absolute, so an adapter names it from anywhere), or None to build one.

    A bare name is a store model when the store has it or can pull it (`saftool.pretrained`), else a
    Hub id without an organisation (`gpt2`).
    """
    base = config.base_model
    if base is None:
        return None
    path = Path(base).expanduser()
    if "/" not in base and not path.exists():
        from saftool.hub import store_model
        from saftool.pretrained import PRETRAINED

        if base in PRETRAINED or (store.models / base).is_dir():
            path = store_model(base, store)
    if path.exists():
        if not path.is_dir():
            raise SaftoolError(f"base model {base!r} is a file; expected a model directory")
        if not (path / "config.json").is_file():
            raise SaftoolError(f"base model directory {base!r} holds no config.json")
        if not any(path.glob("*.safetensors")):
            raise SaftoolError(f"base model directory {base!r} holds no .safetensors weights (saftool loads only safetensors)")
        return str(path.resolve())
    if base.startswith((".", "/", "~")) or base.count("/") > 1:
        raise SaftoolError(f"base model path {base!r} does not exist")
    return base  # a hub id ("org/name"): from_pretrained resolves it


def _prepare_checkpoint_dir(ckpt: Path, identity: dict[str, str], resume: bool, main: bool = True) -> Path | None:
    """Start a fresh checkpoint folder, or check an old one belongs to this run; the checkpoint to resume.

    Only the main process of a multi-process launch starts the folder afresh; the others run after
    it and must not clear what it made.
    """
    state_file = ckpt / CKPT_STATE
    if resume and state_file.is_file():
        import json

        old = json.loads(state_file.read_text(encoding="utf-8"))
        if old != identity:
            raise UsageError(
                f"the checkpoint in {ckpt} was made with another config or mix; rerun without --resume to start over"
            )
        checkpoints = sorted(ckpt.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
        # a kill can land while the newest checkpoint is being written: resume from the newest
        # complete one and drop the torn ones, which the trainer would refuse to load
        while checkpoints and not checkpoint_complete(checkpoints[-1]):
            console.warn(f"{checkpoints[-1].name} was not completely written (killed while saving?); removing it")
            shutil.rmtree(checkpoints.pop())
        if checkpoints:
            console.info(f"resuming from {checkpoints[-1].name}")
            return checkpoints[-1]
        return None
    if not main:
        return None
    if resume:
        console.info("no checkpoint to resume; starting from the beginning")
    if ckpt.exists():
        shutil.rmtree(ckpt)
    ckpt.mkdir(parents=True)
    write_json(identity, state_file)
    return None


_WEIGHT_FILES = ("model.safetensors", "adapter_model.safetensors")


def checkpoint_complete(checkpoint: Path) -> bool:
    """A trainer state that parses (the Trainer writes it last) and the model state in a layout the
    Trainer resumes from, completely written:

    * safetensors weights as long as their header says (one process, DDP), or a sharded index;
    * FSDP's sharded state (`pytorch_model_fsdp_0/`, torch.distributed.checkpoint), whose
      `.metadata` is written only once every process wrote its shard, or its full-state-dict file;
    * DeepSpeed's `global_stepN/` folder, which its `latest` file names only once the save finished.
    """
    import json

    try:
        json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if (checkpoint / "pytorch_model_fsdp_0").is_dir():
        return (checkpoint / "pytorch_model_fsdp_0" / ".metadata").is_file()
    if (checkpoint / "pytorch_model_fsdp.bin").is_file():
        return True
    if (checkpoint / "latest").is_file():
        tag = (checkpoint / "latest").read_text(encoding="utf-8").strip()
        return bool(tag) and any((checkpoint / tag).glob("*model_states.pt"))
    return weights_complete(checkpoint)


def weights_complete(folder: Path) -> bool:
    """Loadable weights in `folder`: a safetensors file (model or adapter) as long as its header
    says, or a sharded index whose every shard is there."""
    import json
    import struct

    try:
        index = folder / "model.safetensors.index.json"
        if index.is_file():
            shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
            return all(_safetensors_complete(folder / shard) for shard in shards)
        weights = next((folder / f for f in _WEIGHT_FILES if (folder / f).is_file()), None)
        return weights is not None and _safetensors_complete(weights)
    except (OSError, ValueError, KeyError, struct.error):
        return False


def _safetensors_complete(path: Path) -> bool:
    import json
    import struct

    with open(path, "rb") as fh:
        header_len = struct.unpack("<Q", fh.read(8))[0]
        header = json.loads(fh.read(header_len))
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    return path.stat().st_size == 8 + header_len + end


def save_final_model(trainer, folder: Path) -> None:
    """Write the trained weights (or adapter) to `folder` as safetensors; every process calls it.

    Under FSDP the Trainer's own `save_model` writes weights only with a full state dict type, and
    accelerate defaults FSDP2 to a sharded one (which its resumable checkpoints should keep), so it
    would leave a folder with a config and no weights. Here the full state dict is gathered for
    the final save (a collective; the main process gets it on the CPU) and the main process writes
    it. DDP and DeepSpeed go through `save_model`, which under ZeRO-3 gathers 16-bit weights when
    the DeepSpeed config allows it.
    """
    if not trainer.is_fsdp_enabled:
        trainer.save_model(str(folder))
        return
    accelerator = trainer.accelerator
    state = accelerator.get_state_dict(trainer.model)
    if trainer.is_world_process_zero():
        accelerator.unwrap_model(trainer.model).save_pretrained(str(folder), state_dict=state, safe_serialization=True)
    accelerator.wait_for_everyone()


def training_texts(items: list[Item]) -> Iterator[str]:
    """Each item as the model sees it in training (prompt in the Alpaca template, then the answer): the tiny tokenizer's corpus."""
    for item in items:
        yield format_prompt(item.instruction, item.input) + item.output


def prompt_completion_dataset(items: list[Item], template: str = "alpaca", system: str | None = None):
    """The items as the prompt-completion dataset SFTTrainer trains on: Alpaca-template text, or
    (template "chat") conversations that TRL renders with the tokenizer's chat template, the prompt
    with the generation prompt (the assistant header), the completion as the assistant turn."""
    from datasets import Dataset

    if template == "chat":
        return Dataset.from_dict(
            {
                "prompt": [chat_messages(item.instruction, item.input, system) for item in items],
                "completion": [[{"role": "assistant", "content": item.output}] for item in items],
            }
        )
    return Dataset.from_dict(
        {
            "prompt": [format_prompt(item.instruction, item.input) for item in items],
            "completion": [item.output for item in items],
        }
    )


def _load_tokenizer(config: TrainConfig, base_path: str):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(base_path, trust_remote_code=False)
    except OSError as exc:
        raise _load_error(config, base_path, exc) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


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
    tokenizer = tokenizer or _load_tokenizer(config, base_path)
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
    model = _load_model(config, base_path, use_cuda, bf16, sharding)
    peft_config = lora_config(config) if config.method != "full" else None
    # the lean loss calls the model's own modules, which a DistributedDataParallel wrapper would bypass;
    # 4-bit bases keep TRL's path
    lean = not use_cuda and config.method != "qlora" and not config.padding_free and processes == 1
    trainer_cls = _lean_trainer_class(SFTTrainer) if lean else SFTTrainer
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=prompt_completion_dataset(items, config.template, config.system),
        processing_class=tokenizer,
        peft_config=peft_config,
        data_collator=_RowPackingCollator(tokenizer.pad_token_id, config.max_length) if lean else None,
    )
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


class _RowPackingCollator:
    """Batches of one-process CPU runs without padding waste: the batch's examples (the same
    examples TRL's collator would batch, so a step means the same thing) go first-fit-decreasing into
    rows of up to `row_length` tokens, with position ids restarting at each example and no attention
    mask, so transformers builds a block-diagonal causal mask and no example attends to another.
    Random batches of the tiny mix padded to their longest example are 2.6x their real tokens; packed
    rows are a few percent. Labels at each example's first position are ignored, as in TRL's
    padding-free collator (nothing before it in the row may predict it).
    """

    def __init__(self, pad_token_id: int, row_length: int):
        self.pad_token_id = pad_token_id
        self.row_length = row_length

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        seqs = sorted(
            ((list(ex["input_ids"]), list(ex.get("labels", ex["input_ids"]))) for ex in examples),
            key=lambda s: -len(s[0]),
        )
        cap = max(self.row_length, len(seqs[0][0]))
        rows: list[list[tuple[list[int], list[int]]]] = []
        used: list[int] = []
        for ids, labels in seqs:
            row = next((r for r, n in enumerate(used) if n + len(ids) <= cap), None)
            if row is None:
                rows.append([])
                used.append(0)
                row = len(rows) - 1
            rows[row].append((ids, labels))
            used[row] += len(ids)
        width = max(used)
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        labels_out = torch.full((len(rows), width), -100, dtype=torch.long)
        position_ids = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            at = 0
            for ids, labels in row:
                n = len(ids)
                input_ids[r, at : at + n] = torch.tensor(ids)
                labels_out[r, at : at + n] = torch.tensor(labels)
                labels_out[r, at] = -100
                position_ids[r, at : at + n] = torch.arange(n)
                at += n
            position_ids[r, at:] = torch.arange(width - at)  # the padding is a sequence of its own
        return {"input_ids": input_ids, "labels": labels_out, "position_ids": position_ids}


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
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.pop("labels")
            # the decoder stack under the LM head (a PEFT model's LoRA layers sit inside it)
            causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
            hidden = causal_lm.base_model(**inputs, use_cache=False).last_hidden_state[:, :-1]
            targets = labels[:, 1:]
            mask = targets != -100
            logits = model.get_output_embeddings()(hidden[mask])
            loss = F.cross_entropy(logits.float(), targets[mask], reduction="sum")
            count = mask.sum() if num_items_in_batch is None else num_items_in_batch
            loss = loss / torch.as_tensor(count).clamp(min=1)
            return (loss, None) if return_outputs else loss

    return LeanSFTTrainer


def lora_config(config: TrainConfig):
    """The PEFT LoRA adapter of `config` (LoRA and QLoRA alike)."""
    from peft import LoraConfig

    targets = list(config.lora_target_modules)
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules="all-linear" if targets == ["all-linear"] else targets,  # PEFT's word for every linear layer
        task_type="CAUSAL_LM",
    )


def _load_model(config: TrainConfig, base_path: str, use_cuda: bool, bf16: bool, sharding: str | None = None):
    import torch
    from transformers import AutoModelForCausalLM

    from saftool.adapters import nf4_config

    kwargs: dict[str, Any] = {"use_safetensors": True, "trust_remote_code": False}
    if config.method == "qlora":
        from accelerate import PartialState

        # FSDP and ZeRO-3 shard parameters of one dtype: the 4-bit weights are stored packed in the
        # compute dtype (bitsandbytes' bnb_4bit_quant_storage) and placed by the sharding, not by a
        # per-rank device_map. Plain DDP keeps a whole copy on each process's own device, as 4-bit
        # weights cannot move after loading.
        compute = torch.bfloat16 if bf16 else torch.float32
        kwargs["quantization_config"] = nf4_config(bf16, quant_storage=compute if sharding else None)
        if sharding is None:
            kwargs["device_map"] = {"": PartialState().local_process_index} if use_cuda else {"": "cpu"}
        kwargs["dtype"] = compute
    elif config.method == "lora" and bf16:
        kwargs["dtype"] = torch.bfloat16  # frozen base in bf16; the adapter trains under autocast
    else:
        kwargs["dtype"] = torch.float32  # full fine-tuning keeps fp32 master weights (bf16 via autocast)
    try:
        return AutoModelForCausalLM.from_pretrained(base_path, **kwargs)
    except OSError as exc:
        raise _load_error(config, base_path, exc) from None


def _load_error(config: TrainConfig, base_path: str, exc: OSError) -> SaftoolError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return SaftoolError(f"could not load base model {config.base_model or base_path!r}: {first}")


class _SessionClock:
    """Training time and tokens of this session (a resumed run counts only what it trained itself)."""

    seconds = 0.0
    tokens_at_start = 0


def _progress_callback(bar, clock: _SessionClock):
    """A TrainerCallback that moves the one progress bar (None: this process shows none) and times training."""
    from transformers import TrainerCallback

    class ProgressBar(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            clock.tokens_at_start = state.num_input_tokens_seen
            self.t0 = time.monotonic()
            if bar is not None:
                bar.update(total=state.max_steps, completed=state.global_step)

        def on_step_end(self, args, state, control, **kwargs):
            if bar is not None:
                bar.update(completed=state.global_step)

        def on_train_end(self, args, state, control, **kwargs):
            clock.seconds = time.monotonic() - self.t0

    return ProgressBar()


def _versions(config: TrainConfig) -> dict[str, str]:
    versions = {"saftool": __version__}
    for lib in _LIBRARIES:
        if lib == "bitsandbytes" and config.method != "qlora":
            continue
        try:
            versions[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


@contextlib.contextmanager
def _cpu_threads(config: TrainConfig, use_cuda: bool) -> Iterator[None]:
    """One torch thread while a tool-built (tiny/smoke) model trains on the CPU; restored afterwards.

    Its matrices are too small to split: on the 2-core box, 1 thread gave 9.2k tok/s and 2 threads
    10.2k with OMP_WAIT_POLICY=PASSIVE, but 2 threads with the default (spinning) OpenMP wait policy
    fell to 0.6k tok/s whenever another process used a core (intra-op threads spin waiting for a
    busy core). The wait policy cannot be changed once torch has loaded, so 1 thread is the safe
    choice. Real models (--base-model) and GPU runs keep torch's default.
    """
    if use_cuda or config.base_model is not None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _quiet_libraries() -> Iterator[None]:
    """Silence the libraries' own bars, info logs and warnings; saftool reports progress itself."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    import datasets
    import transformers

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
