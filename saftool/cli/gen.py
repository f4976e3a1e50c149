"""`saftool gen`: harmful prompts with refusals, built-in benign tasks, or safe prompts that look unsafe,
as JSONL records."""

from __future__ import annotations

import typer

from saftool.gen import GenConfig
from saftool.stageconfig import option


def gen(
    ctx: typer.Context,
    n: int = option(GenConfig, "n", help="Number of records."),
    kind: str = option(
        GenConfig,
        "kind",
        help="harmful (prompts + refusals), benign (tasks + exact answers), looks-unsafe (safe prompts in "
        "XSTest's categories; --split eval is the over-refusal set, train the look-alikes the base model answers) or instructions (open-ended requests without answers: a "
        "pretrained model's own answers to them make its base set).",
    ),
    split: str = option(GenConfig, "split", help="train, or eval: a held-out family never in train."),
    style: str = option(GenConfig, "style", help="Refusal in `output`: noreason, short or long."),
    seed: int = option(GenConfig, "seed", help="Same seed, same output, byte for byte."),
    backend: str = option(GenConfig, "backend", help="template (offline) or openai (needs --model or openai:MODEL)."),
    model: str = option(GenConfig, "model", help="Chat model for --backend openai [default: gpt-4o-mini]."),
    diverse: bool = option(GenConfig, "diverse", help="Pick one prompt per embedding cluster (all-MiniLM-L6-v2)."),
    candidates: int = option(
        GenConfig, "candidates", min=1, help="Candidates before diverse selection [default: 3000 per 700 kept]."
    ),
    question_fraction: float = option(
        GenConfig, "question_fraction", help="Share of questions; the rest are statements."
    ),
    refusal: str = option(GenConfig, "refusal", help="The template refusal (all styles start with it)."),
    concurrency: int = option(GenConfig, "concurrency", help="Parallel requests for --backend openai."),
    output: str = typer.Option(
        None, "-o", "--output", help="FILE, or - for stdout [default: store/prompts/KIND-SPLIT-...jsonl]."
    ),
) -> None:
    """Generate harmful prompts with abstention answers (or benign tasks with exact answers, or safe
    prompts that look unsafe, to measure over-refusal).

    Every harmful record has `output` in --style and `responses` in all three styles, so
    `saftool mix --style` can restyle one prompt set; the same --seed and --n give the same
    instructions in every style.

    Examples:

      saftool gen --n 700                        # 700 diverse prompts, template refusal

      saftool gen --n 350 --style long --seed 1  # refusals with a full reason

      saftool gen --n 200 --split eval           # held-out phrasings for evaluation

      saftool gen --kind benign --n 3000         # built-in benign tasks (train split)

      saftool gen --kind looks-unsafe --split eval --n 200 -o store/evals/heldout-looks-unsafe.jsonl

      saftool gen --kind instructions --n 1000 -o base-prompts.jsonl   # then: saftool infer -i ... -o ...

      saftool gen --backend openai --model gpt-4o-mini --n 700   # uses OPENAI_API_KEY / OPENAI_BASE_URL

      saftool gen --n 20 -o - | saftool mix --harm - --n-harm 20 --name pipe -o -
    """
    from saftool import console
    from saftool.cli import get_store
    from saftool.gen import default_path, generate
    from saftool.io import write_records

    config = GenConfig(
        kind=kind,
        n=n,
        split=split,
        style=style,
        seed=seed,
        backend=backend,
        model=model,
        diverse=diverse,
        candidates=candidates,
        question_fraction=question_fraction,
        refusal=refusal,
        concurrency=concurrency,
    ).checked()
    store = get_store(ctx)
    dst = output or str(default_path(config, store))
    count = write_records(generate(config, store), dst)
    if dst != "-":
        console.info(f"wrote {count} {kind} records to {dst}")


def register(app: typer.Typer) -> None:
    app.command("gen")(gen)
