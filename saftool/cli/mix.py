"""`saftool mix`: base instructions + N harmful prompts with refusals -> one training set."""

from __future__ import annotations

from pathlib import Path

import typer

from saftool.mix import MixConfig
from saftool.stageconfig import config_options


@config_options(MixConfig)
def mix(
    ctx: typer.Context,
    config: MixConfig,
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
    from saftool.mix import build_mix, manifest_path_for, write_mix

    store = get_store(ctx)
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
