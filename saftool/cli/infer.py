"""`saftool infer`: answer evaluation prompts with a model."""

from __future__ import annotations

import typer

from saftool.infer import InferJob
from saftool.stageconfig import config_options


@config_options(InferJob, input={"aliases": ("--input",)}, output={"aliases": ("--output",)},
                template={"show_default": False})  # fmt: skip
def infer(
    ctx: typer.Context,
    config: InferJob,
    endpoint: str = typer.Option(
        "chat",
        "--endpoint",
        help="openai: chat (messages, rendered by the server's chat template) or completions (the raw "
        "alpaca/none text, for base models served without a chat template).",
    ),
    batch_size: int = typer.Option(
        None,
        "--batch-size",
        min=1,
        help="Prompts worked on at once (hf: prompts decoded together; vllm: prompts per generate call; openai: "
        "concurrent requests), also answers per write, so the most a kill loses [default: the backend's].",
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda (hf; vllm runs on cuda only)."),
    max_memory: float = typer.Option(
        0.8,
        "--max-memory",
        help="Share of the free GPU (or host) memory the KV cache may take, in (0, 1] (hf: read after the weights "
        "load; the paged decoder's share holds transformers' working buffers too; vllm: weights and cache).",
    ),
    decoder: str = typer.Option(
        "auto",
        "--decoder",
        help="hf greedy path: auto (slots for Llama on the CPU, loop for other models on the CPU, paged on CUDA), "
        "slots (saftool's Llama decoder), paged (transformers' generate_batch) or loop.",
    ),
    tensor_parallel: int = typer.Option(1, "--tensor-parallel", min=1, help="vllm: GPUs to split the model over."),
    load_in_4bit: bool = typer.Option(
        False,
        "--load-in-4bit",
        help="hf: load the base in 4-bit NF4 and keep a LoRA adapter unmerged on it, to evaluate a QLoRA "
        "adapter on the base it was trained on (needs bitsandbytes; slow on the CPU).",
    ),
    dtype: str = typer.Option(
        "auto",
        "--dtype",
        help="hf: auto (bf16 on a GPU that has it, and on a CPU with AMX-BF16 or AVX512-BF16 for models of hidden "
        "size 256 and up; float32 otherwise), float32 or bfloat16. bf16 answers faster; some answers change.",
    ),
) -> None:
    """Answer prompts and write response records to store/responses/MODEL/EVAL.jsonl.

    Greedy by default, stopping at the tokenizer's EOS and every stop token in the model's
    generation_config. A rerun skips prompts already answered with the same generation config
    (template and system message included), so an interrupted run just continues.

    Examples:

      saftool infer --model harm700 --eval heldout-harmful,heldout-benign

      saftool infer --model ./my-llama -i prompts.jsonl -o -

      HF_HUB_OFFLINE=1 saftool infer --model meta-llama/Llama-2-7b-hf --eval advbench

      saftool infer --model meta-llama/Llama-3.1-8B-Instruct --template chat --system "Be brief." --eval advbench

      saftool infer --backend openai --model gpt-4o-mini --eval heldout-harmful
    """
    from pathlib import Path

    from saftool import console
    from saftool.cli import get_store, given_options
    from saftool.errors import UsageError
    from saftool.infer import infer as infer_lib
    from saftool.io import read_records
    from saftool.records import Item
    from saftool.runtimes import RUNTIMES, load_runtime

    names = config.eval_names()
    if config.input is None and not names:
        raise UsageError("give --eval NAME[,NAME...] or -i FILE|-")
    items = read_records(config.input, Item) if config.input is not None else None
    items_name = config.name or ("stdin" if config.input in (None, "-") else Path(config.input).stem)
    store = get_store(ctx)
    # the backend's own flags go to it only when given: its options model checks them
    options, flags = given_options(ctx, RUNTIMES.option_names())
    runtime = load_runtime(config.backend, config.model, store=store, flags=flags, **options)
    results = infer_lib(
        runtime, names, items=items, items_name=items_name, output=config.output, store=store,
        generation=config.generation(),
    )  # fmt: skip
    for r in results:
        console.info(
            f"{r.eval_set}: {r.answered} answered, {r.skipped} already done, "
            f"{r.tokens_per_second:.0f} tok/s -> {r.path}"
        )


def register(app: typer.Typer) -> None:
    app.command("infer")(infer)
