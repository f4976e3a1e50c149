"""The training run itself: `train()` locks the model name, skips a finished run, checks, prepares
the checkpoint folder, trains, and registers the model directory in one rename with its run record."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import shutil
import time
from pathlib import Path

from saftool import __version__, console
from saftool.devices import resolve_device
from saftool.errors import SaftoolError
from saftool.hashing import config_hash, file_sha256
from saftool.io import output_lock, read_json, read_records, write_json
from saftool.presets import TrainConfig
from saftool.records import Item, LossPoint, TrainRun
from saftool.store import Store, check_name
from saftool.train.checkpoints import (
    checkpoint_dir,
    prepare_checkpoint_dir,
    save_final_model,
    weights_complete,
)
from saftool.train.checks import check_base, check_base_model, check_method, check_sharding, sharding_kind
from saftool.train.collate import training_texts
from saftool.train.session import SessionClock, cpu_threads, progress_callback, quiet_libraries
from saftool.train.trainer import make_trainer

_LIBRARIES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "tokenizers", "bitsandbytes")


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

    check_method(config)
    use_cuda = resolve_device(config.device)
    base_path = check_base(config, store)
    sharding = sharding_kind()
    check_sharding(config, sharding, use_cuda)

    ckpt = checkpoint_dir(store, name)
    identity = {"config_hash": cfg_hash, "mix_sha256": mix_sha}

    with quiet_libraries(), cpu_threads(config, use_cuda):
        from accelerate import PartialState

        processes = PartialState(cpu=not use_cuda)
        grad_accum = config.accumulation_steps(processes.num_processes)
        tokenizer = None if base_path is None else check_base_model(config, base_path)
        # under `accelerate launch` or torchrun every process runs this: the main one prepares the
        # checkpoint folder (and builds a tiny base) first, the others then find both ready
        with processes.main_process_first():
            resume_from = prepare_checkpoint_dir(ckpt, identity, resume, main=processes.is_main_process)
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
        clock = SessionClock()
        with console.progress(f"train {name}", None) if main else contextlib.nullcontext() as bar:
            trainer.add_callback(progress_callback(bar, clock))
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
