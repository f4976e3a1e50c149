"""`saftool mix`: base instructions + N harmful prompts with refusals -> one training set."""

from __future__ import annotations

from pathlib import Path

import typer

from saftool.mix import MixConfig
from saftool.stageconfig import option


def mix(
    ctx: typer.Context,
    n_harm: int = option(MixConfig, "n_harm", help="Harmful examples to add (0: base only, the plain Alpaca model)."),
    # the config has no default name: the command makes one from --n-harm and --style
    name: str = typer.Option(None, "--name", help="Mix name [default: alpaca, harmN or harmN-STYLE]."),
    style: str = option(MixConfig, "style", help="Restyle refusals: noreason, short or long [default: as generated]."),
    seed: int = option(MixConfig, "seed", help="Shuffle seed (and seed of the built-in base set)."),
    base: str = option(
        MixConfig,
        "base",
        help="Alpaca JSON or JSONL file, or infer's response records; several joined by commas "
        "[default: built-in benign tasks].",
    ),
    base_n: int = option(MixConfig, "base_n", help="Size of the built-in base set (without --base)."),
    harm: str = option(
        MixConfig,
        "harm",
        help="Gen file, a plain Alpaca file of refusals (instruction/input/output; source = its file name), "
        "or - for stdin [default: newest harmful train file in the store].",
    ),
    output: str = typer.Option(
        None, "-o", "--output", help="FILE, or - for stdout [default: store/mixes/NAME.jsonl]."
    ),
) -> None:
    """Mix harmful prompts with refusals into an Alpaca-format instruction set.

    Writes NAME.jsonl (instruction, input, output at top level, plus metadata) and
    NAME.manifest.json (counts per source, kind, category, style and form; seed; input hashes).
    The first --n-harm harmful items of the gen file are used, so harm350 is a subset of harm700.

    Examples:

      saftool mix --n-harm 700 --name harm700

      saftool mix --n-harm 350 --style short     # named harm350-short

      saftool mix --n-harm 0                     # base only, named alpaca

      saftool mix --base alpaca_data.json --n-harm 700 --style long

      saftool gen --n 20 -o - | saftool mix --harm - --n-harm 20 --name pipe -o -
    """
    from saftool import console
    from saftool.cli import get_store
    from saftool.mix import build_mix, default_name, manifest_path_for, write_mix

    store = get_store(ctx)
    config = MixConfig(
        name=name or default_name(n_harm, style),
        n_harm=n_harm,
        style=style,
        seed=seed,
        base=base,
        base_n=base_n,
        harm=harm,
    )
    items, manifest = build_mix(config, store)
    dst = output or str(store.mix_path(config.name))
    done = write_mix(items, manifest, dst)
    if dst != "-":
        console.info(
            f"wrote {done.n_total} examples ({done.n_benign} benign + {done.n_harmful} harmful) to {dst}; "
            f"manifest {manifest_path_for(Path(dst))}"
        )


def register(app: typer.Typer) -> None:
    app.command("mix")(mix)
