"""`saftool infer`: answer evaluation prompts with a model."""

from __future__ import annotations

import typer


def infer(
    ctx: typer.Context,
    model: str = typer.Option(..., "--model", help="Model name in the store, a local model directory, a Hugging Face Hub id ORG/NAME[@REVISION] (from the HF cache; HF_HOME, HF_HUB_OFFLINE honoured), or a served model id (openai)."),
    eval_sets: str = typer.Option(None, "--eval", help="Comma-separated eval set names from store/evals/."),
    input: str = typer.Option(None, "-i", "--input", help="JSONL file of items to answer, or - for stdin."),
    name: str = typer.Option(None, "--name", help="Eval set name for -i items [default: the file's stem, or stdin]."),
    output: str = typer.Option(None, "-o", "--output", help="With -i: FILE, or - for stdout [default: the store]."),
    backend: str = typer.Option("hf", "--backend", help="hf (transformers), vllm, or openai (any compatible server)."),
    max_new_tokens: int = typer.Option(100, "--max-new-tokens", min=1, help="Answer length limit, as in the study."),
    sample: bool = typer.Option(False, "--sample", help="Sample instead of greedy decoding."),
    temperature: float = typer.Option(1.0, "--temperature", help="Sampling temperature (with --sample)."),
    top_p: float = typer.Option(1.0, "--top-p", help="Nucleus sampling mass (with --sample)."),
    template: str = typer.Option("alpaca", "--template", help="alpaca (the training template) or none (raw instruction)."),
    batch_size: int = typer.Option(
        None,
        "--batch-size",
        min=1,
        help="Prompts worked on at once (hf: prompts decoded together; vllm: prompts per generate call; openai: "
        "concurrent requests), also answers per write, so the most a kill loses [default: the backend's].",
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda (hf; vllm runs on cuda only)."),
) -> None:
    """Answer prompts and write response records to store/responses/MODEL/EVAL.jsonl.

    Greedy by default, stopping at EOS; prompts use the training template. A rerun skips prompts
    already answered with the same generation config, so an interrupted run just continues.

    Examples:

      saftool infer --model harm700 --eval heldout-harmful,heldout-benign

      saftool infer --model ./my-llama -i prompts.jsonl -o -

      HF_HUB_OFFLINE=1 saftool infer --model meta-llama/Llama-2-7b-hf --eval advbench

      saftool infer --backend openai --model gpt-4o-mini --eval heldout-harmful
    """
    from pathlib import Path

    from saftool import console
    from saftool.cli import get_store
    from saftool.errors import UsageError
    from saftool.infer import infer as infer_lib
    from saftool.io import read_records
    from saftool.records import GenerationConfig, Item

    names = [n.strip() for n in eval_sets.split(",") if n.strip()] if eval_sets else []
    if input is None and not names:
        raise UsageError("give --eval NAME[,NAME...] or -i FILE|-")
    generation = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=sample,
        temperature=temperature if sample else 0.0,
        top_p=top_p if sample else 1.0,
        template=template,
    )
    items = read_records(input, Item) if input is not None else None
    items_name = name or ("stdin" if input in (None, "-") else Path(input).stem)
    results = infer_lib(
        model,
        names,
        items=items,
        items_name=items_name,
        output=output,
        store=get_store(ctx),
        backend=backend,
        generation=generation,
        batch_size=batch_size,
        device=device,
    )
    for r in results:
        console.info(
            f"{r.eval_set}: {r.answered} answered, {r.skipped} already done, "
            f"{r.tokens_per_second:.0f} tok/s -> {r.path}"
        )


def register(app: typer.Typer) -> None:
    app.command("infer")(infer)
