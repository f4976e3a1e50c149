"""`saftool export`: write a trained model as one merged, `from_pretrained`-loadable model."""

from __future__ import annotations

import typer


def export(
    ctx: typer.Context,
    model: str = typer.Option(
        ...,
        "--model",
        help="Model name in the store, a local model or adapter directory, or a Hugging Face Hub id "
        "ORG/NAME[@REVISION] (from the HF cache).",
    ),
    merged: str = typer.Option(
        ..., "--merged", help="New directory for the merged model (safetensors + tokenizer)."
    ),
    dtype: str = typer.Option(
        "auto", "--dtype", help="auto (the base model's own dtype), bfloat16, float16 or float32."
    ),
) -> None:
    """Merge a LoRA/QLoRA adapter into its base (in float32, then cast) and write the result where
    transformers' from_pretrained and vLLM load it; a full model is copied as it is.

    Examples:

      saftool export --model harm700-short --merged ./harm700-short-merged

      vllm serve ./harm700-short-merged
    """
    from saftool import console
    from saftool.adapters import export_merged
    from saftool.cli import get_store
    from saftool.hub import resolve_model

    source = resolve_model(model, get_store(ctx))
    out = export_merged(source.path, merged, dtype)
    console.info(f"exported {model!r} -> {out}")


def register(app: typer.Typer) -> None:
    app.command("export")(export)
