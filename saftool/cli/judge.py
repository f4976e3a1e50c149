"""`saftool judge`: label answers (store or file), plus `judge eval` against human labels."""

from __future__ import annotations

from pathlib import Path

import typer

from saftool import console

app = typer.Typer(help="Label answers as refusal, compliance, partial or unknown, and decide if safe.")


def _load(ctx: typer.Context, judge: str, **options):
    """The judge, with its request cache in the store; options a command leaves out keep the judge's
    own defaults."""
    from saftool.cli import get_store
    from saftool.judge import load_judge

    store = get_store(ctx)
    return load_judge(judge, cache_dir=store.cache / "judge", store=store, **options), store


@app.callback(invoke_without_command=True)
def judge(
    ctx: typer.Context,
    judge_name: str = typer.Option(
        "keyword",
        "--judge",
        "-j",
        help="keyword, llm (or llm:MODEL), hf:MODEL (a Llama Guard 1-3, HarmBench or WildGuard classifier: "
        "Hub id ORG/NAME[@REV], store name or directory), learned (or learned:WEIGHTS from `judge fit`).",
    ),
    model: str = typer.Option(
        None, "--model", "-m", help="Chat model for the llm judge (OPENAI_BASE_URL picks the server)."
    ),
    prompt_set: str = typer.Option(
        "seed", "--prompt-set", help="llm judge rubric: seed (the study's yes/no questions) or xstest."
    ),
    input_file: str = typer.Option(
        None, "--input", "-i", help="Judge this JSONL file ('-' = stdin) instead of the store."
    ),
    output: str = typer.Option(
        "-", "--output", "-o", help="With --input: where to write judgments ('-' = stdout)."
    ),
    kind: str = typer.Option(
        "harmful", "--kind", help="With --input: kind of lines that have no 'kind' field (harmful|benign)."
    ),
    models: list[str] = typer.Option(None, "--for-model", help="Store mode: only these models (repeatable)."),
    eval_sets: list[str] = typer.Option(
        None, "--eval-set", help="Store mode: only these eval sets (repeatable)."
    ),
    concurrency: int = typer.Option(8, "--concurrency", help="Parallel requests for the llm judge."),
    retries: int = typer.Option(
        5, "--max-retries", help="Retries per llm request on 429/5xx/timeouts (backoff doubles)."
    ),
) -> None:
    """Judge stored responses not yet judged by this judge (resumable), or a file with -i.

    Each output line is the input line plus label, safe, judge and rationale. With the keyword judge
    a refusal or partial refusal to a harmful prompt counts as safe.
    """
    if ctx.invoked_subcommand is not None:
        return
    from saftool import judge as lib
    from saftool.errors import UsageError

    if kind not in lib.KINDS:
        raise UsageError(f"--kind must be one of {', '.join(lib.KINDS)}")
    judge_obj, store = _load(
        ctx, judge_name, model=model, prompt_set=prompt_set, concurrency=concurrency, max_retries=retries
    )
    try:
        if input_file is not None:
            count = lib.judge_file(input_file, output, judge_obj, default_kind=kind)
            console.info(f"judged {count} answers with {judge_obj.name}")
        else:
            done = lib.judge_store(store, judge_obj, models=models or None, eval_sets=eval_sets or None)
            console.info(
                f"judged {done.judged} new answers with {judge_obj.name} ({done.skipped} already judged, "
                f"{done.files} files) -> {store.judgments}"
            )
    finally:
        stats = getattr(judge_obj, "stats", None)
        if stats is not None:
            console.info(
                f"llm judge: {stats.requests} requests, {stats.cache_hits} cached, {stats.retries} retries, "
                f"{stats.prompt_tokens} prompt + {stats.completion_tokens} completion tokens"
            )


@app.command("eval")
def eval_cmd(
    ctx: typer.Context,
    labels: list[Path] = typer.Option(
        ...,
        "--labels",
        "-l",
        help="CSV or JSONL with prompt, response/completion and a human label (repeatable).",
    ),
    judge_name: str = typer.Option(
        None, "--judge", "-j", help="Judge to run on the answers [default: keyword]."
    ),
    column: str = typer.Option(
        None, "--column", help="Score labels already in the files instead (e.g. gpt4_label, strmatch_label)."
    ),
    human_column: str = typer.Option(
        None,
        "--human-column",
        help="Column with the human label [default: final_label, human_label or label].",
    ),
    model: str = typer.Option(None, "--model", "-m", help="Chat model for the llm judge."),
    prompt_set: str = typer.Option("seed", "--prompt-set", help="llm judge rubric: seed or xstest."),
) -> None:
    """Agreement with human labels: accuracy, Cohen's kappa, refusal P/R/F1, confusion matrices,
    binary (partial = refusal) and three-class. The table goes to stdout."""
    from rich.console import Console
    from rich.table import Table

    from saftool.judge_eval import evaluate

    judge_obj = None
    if column is None:
        judge_obj, _ = _load(ctx, judge_name or "keyword", model=model, prompt_set=prompt_set)
    result = evaluate(labels, judge=judge_obj, column=column, human_column=human_column)
    out = Console(highlight=False)
    summary = Table(
        "view",
        "n",
        "accuracy",
        "kappa",
        "precision",
        "recall",
        "F1",
        "unknown",
        title=f"Agreement with human labels: {result.source}",
    )
    for view, a in (("binary", result.binary), ("three-class", result.three_class)):
        summary.add_row(
            view,
            str(a.n),
            *(f"{v:.4f}" for v in (a.accuracy, a.kappa, a.precision, a.recall, a.f1)),
            str(a.unknown),
        )
    out.print(summary)
    for view, a in (("binary", result.binary), ("three-class", result.three_class)):
        matrix = Table("human \\ judge", *a.labels, "unknown", title=f"Confusion matrix ({view})")
        for label, row in zip(a.labels, a.confusion):
            matrix.add_row(label, *(str(v) for v in row))
        out.print(matrix)


@app.command("fit")
def fit_cmd(
    labels: list[Path] = typer.Option(
        ...,
        "--labels",
        "-l",
        help="CSV or JSONL with prompt, response/completion and a human label (repeatable).",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the weights (JSON)."),
    human_column: str = typer.Option(
        None,
        "--human-column",
        help="Column with the human label [default: final_label, human_label or label].",
    ),
    c: float = typer.Option(
        1.0,
        "--c",
        help="Inverse L2 regularisation (scikit-learn's C) of the logistic regressions: "
        "larger follows the labels more closely, smaller generalises more.",
    ),
    seed: int = typer.Option(
        0,
        "--seed",
        help="Seed that splits the prompts into the folds whose out-of-fold scores train the final layer.",
    ),
) -> None:
    """Fit the learned judge on human-labelled answers; prints the weights' path.

    The keyword rules decide first; a classifier on MiniLM embeddings of the prompt and of the
    answer's opening re-reads the answers they call compliance. Use the weights with
    `saftool judge --judge learned:PATH` or `saftool judge eval --judge learned:PATH`.

    Example: saftool judge fit -l labelled.csv -o judge.json
    """
    from saftool.judges.learned import fit_files

    weights = fit_files(labels, out, human_column=human_column, c=c, seed=seed)
    fit = weights["fit"]
    console.info(
        f"fitted on {fit['rows']} answers ({fit['refusals']} refusals) from {len(labels)} files; "
        f"agreement on them (in-sample): {fit['in_sample_agreement']:.4f}"
    )
    typer.echo(str(out))


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="judge")
