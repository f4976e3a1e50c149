"""`saftool gen`: harmful prompts with refusals, built-in benign tasks, or safe prompts that look unsafe,
as JSONL records."""

from __future__ import annotations

import typer

from saftool.gen import GenConfig
from saftool.stageconfig import config_options


# candidates: the library takes 0 for its default; the command asks for a count
@config_options(GenConfig, candidates={"min": 1})
def gen(
    ctx: typer.Context,
    config: GenConfig,
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

    config = config.checked()
    store = get_store(ctx)
    dst = output or str(default_path(config, store))
    count = write_records(generate(config, store), dst)
    if dst != "-":
        console.info(f"wrote {count} {config.kind} records to {dst}")


def register(app: typer.Typer) -> None:
    app.command("gen")(gen)
