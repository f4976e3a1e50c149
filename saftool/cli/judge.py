"""`saftool judge`: label answers (store or file), plus `judge eval` against human labels."""

from __future__ import annotations

from pathlib import Path

import typer

from saftool import console
from saftool.judge import DEFAULT_JUDGE, JudgeJob
from saftool.judges.cascade import CascadeJudge
from saftool.judges.llm import LLMJudge
from saftool.stageconfig import option

JUDGE_HELP = (
    "keyword, learned (or learned:WEIGHTS from `judge fit`), llm (or llm:MODEL), hf:MODEL (a Llama Guard 1-3, "
    "HarmBench or WildGuard classifier: Hub id ORG/NAME[@REV], store name or directory), "
    "or cascade:FIRST,SECOND (e.g. cascade:learned,llm: the second judge only for answers the first is "
    "unsure of)."
)

# the judges' options with no flag of their own (tests check this against the judges' Options)
JUDGE_OPTION_HELP = (
    "An option of the chosen judge that has no flag of its own, as NAME=VALUE (repeatable): "
    "hf: batch_size, max_new_tokens, device; llm: backoff, timeout."
)

app = typer.Typer(help="Label answers as refusal, compliance, partial or unknown, and decide if safe.")


def _load(ctx: typer.Context, judge: str, judge_options: list[str] | None):
    """The judge, with its request cache in the store, built with the judge options the user gave
    (flags and --judge-option); those left out keep the judge's own defaults, and one the judge does
    not take is an error naming both."""
    from saftool.cli import get_store, given_options
    from saftool.errors import UsageError
    from saftool.judge import JUDGES, load_judge

    store = get_store(ctx)
    options, flags = given_options(ctx, JUDGES.option_names())
    for item in judge_options or []:
        name, equals, value = item.partition("=")
        if not equals or not name:
            raise UsageError(f"--judge-option {item!r}: write NAME=VALUE")
        if name in options:
            raise UsageError(f"--judge-option {name} is given twice (or also as {flags[name]})")
        options[name], flags[name] = value, f"--judge-option {name}"
    return load_judge(judge, store=store, flags=flags, **options), store


@app.callback(invoke_without_command=True)
def judge(
    ctx: typer.Context,
    judge_name: str = option(JudgeJob, "judge", "-j", help=JUDGE_HELP),
    model: str = option(
        LLMJudge.Options, "model", "-m", help="Chat model for the llm judge (OPENAI_BASE_URL picks the server)."
    ),
    prompt_set: str = option(
        LLMJudge.Options, "prompt_set", help="llm judge rubric: seed (the study's yes/no questions) or xstest."
    ),
    input_file: str = option(JudgeJob, "input", "-i"),
    output: str = option(JudgeJob, "output", "-o", help="With --input: where to write judgments ('-' = stdout)."),
    kind: str = option(JudgeJob, "kind", help="With --input: kind of lines that have no 'kind' field (harmful|benign)."),
    models: list[str] = typer.Option(None, "--for-model", help="Store mode: only these models (repeatable)."),
    eval_sets: list[str] = typer.Option(
        None, "--eval-set", help="Store mode: only these eval sets (repeatable)."
    ),
    concurrency: int = option(LLMJudge.Options, "concurrency", help="Parallel requests for the llm judge."),
    max_retries: int = option(
        LLMJudge.Options, "max_retries", help="Retries per llm request on 429/5xx/timeouts (backoff doubles)."
    ),
    threshold: float = option(
        CascadeJudge.Options, "threshold",
        help="cascade: answers whose first-judge confidence is below this go to the second judge.",
    ),
    judge_options: list[str] = typer.Option(None, "--judge-option", metavar="NAME=VALUE", help=JUDGE_OPTION_HELP),
) -> None:
    """Judge stored responses not yet judged by this judge (resumable), or a file with -i.

    Each output line is the input line plus label, safe, judge, rationale and evidence (the rule
    that fired, a classifier's probability, an API judge's reply, which judge of a cascade decided).
    A refusal or partial refusal to a harmful prompt counts as safe.
    """
    if ctx.invoked_subcommand is not None:
        return
    from saftool import judge as lib
    from saftool.errors import UsageError

    job = JudgeJob(judge=judge_name, input=input_file, output=output, kind=kind)
    if job.kind not in lib.KINDS:
        raise UsageError(f"--kind must be one of {', '.join(lib.KINDS)}")
    # --model, --prompt-set, --concurrency, --max-retries, --cascade-threshold reach the judge from ctx
    judge_obj, store = _load(ctx, job.judge, judge_options)
    try:
        if job.input is not None:
            count = lib.judge_file(job.input, job.output, judge_obj, default_kind=job.kind)
            console.info(f"judged {count} answers with {judge_obj.name}")
        else:
            done = lib.judge_store(store, judge_obj, models=models or None, eval_sets=eval_sets or None)
            console.info(
                f"judged {done.judged} new answers with {judge_obj.name} ({done.skipped} already judged, "
                f"{done.files} files) -> {store.judgments}"
            )
    finally:
        _usage(judge_obj)


def _usage(judge_obj) -> None:
    """What the judge cost: a cascade's split between its judges, an API judge's requests."""
    for line in judge_obj.usage():
        console.info(line)


@app.command("eval")
def eval_cmd(
    ctx: typer.Context,
    labels: list[Path] = typer.Option(
        ...,
        "--labels",
        "-l",
        help="CSV or JSONL with prompt (or eval_set and id of a store eval set), response/completion "
        "and a human label (repeatable).",
    ),
    judge_name: str = typer.Option(
        None, "--judge", "-j", help=f"Judge to run on the answers: {JUDGE_HELP} [default: {DEFAULT_JUDGE}]."
    ),
    column: str = typer.Option(
        None, "--column", help="Score labels already in the files instead (e.g. gpt4_label, strmatch_label)."
    ),
    human_column: str = typer.Option(
        None,
        "--human-column",
        help="Column with the human label [default: final_label, human_label or label].",
    ),
    model: str = option(LLMJudge.Options, "model", "-m", help="Chat model for the llm judge."),
    prompt_set: str = option(LLMJudge.Options, "prompt_set", help="llm judge rubric: seed or xstest."),
    threshold: float = option(
        CascadeJudge.Options, "threshold", help="cascade: first-judge confidence below which the second decides."
    ),
    judge_options: list[str] = typer.Option(None, "--judge-option", metavar="NAME=VALUE", help=JUDGE_OPTION_HELP),
    estimate: str = typer.Option(
        "in-sample",
        "--estimate",
        help="How the judge's verdicts are made: in-sample (as it is), prompt-grouped (refitted on "
        "4/5 of the prompts, scored on the rest) or leave-one-model-out (refitted without each model's "
        "file or `model` value); the last two only for judges that learn from labels (learned).",
    ),
    profile: str = typer.Option(
        None,
        "--profile",
        help="Save the judge's sensitivity and specificity for 'unsafe' as store/judges/NAME.profile.json, "
        "for `report`'s judge-corrected intervals (name it after the judge and report uses it by default).",
    ),
    errors: Path = typer.Option(
        None,
        "--errors",
        help="Write the rows where judge and people disagree, with the judge's evidence (JSONL).",
    ),
) -> None:
    """Agreement with human labels: accuracy, Cohen's kappa, refusal P/R/F1, confusion matrices,
    binary (partial = refusal) and three-class. The table goes to stdout.

    Example: saftool judge eval -l a.csv -l b.csv --judge learned --estimate leave-one-model-out --profile learned
    """
    from rich.console import Console
    from rich.table import Table

    from saftool.cli import get_store
    from saftool.errors import UsageError
    from saftool.judge import judge_info
    from saftool.judges import profile as judge_profile
    from saftool.judges.evaluation import evaluate, write_errors

    judge_obj, store = None, get_store(ctx)
    if column is not None and judge_name is not None:
        raise UsageError("--column scores labels already in the files and runs no judge; drop --judge")
    if column is None:
        # --model, --prompt-set and --cascade-threshold reach the judge from ctx
        judge_obj, store = _load(ctx, judge_name or DEFAULT_JUDGE, judge_options)
    elif profile is not None:
        raise UsageError("--profile measures a judge; it cannot be made from a label column")
    if profile is not None:
        store.profile_path(profile)  # a bad name fails before the judge runs
    try:
        result = evaluate(
            labels, judge=judge_obj, column=column, human_column=human_column, estimate=estimate, store=store
        )
    finally:
        if judge_obj is not None:
            _usage(judge_obj)
    if result.left_out:
        console.info(f"left out {result.left_out} rows labelled unknown (empty answers: no verdict to agree with)")
    if errors is not None:
        count = write_errors(result, errors)
        console.info(f"wrote {count} disagreements with their evidence to {errors}")
    if profile is not None:
        if estimate == "in-sample" and judge_obj.learns_from_labels:
            console.warn(
                f"{judge_obj.name} learns from labels: an in-sample profile flatters it on rows it was fitted "
                "on; --estimate leave-one-model-out measures it on models it never saw"
            )
        doc = judge_profile.build(result, judge_info(judge_obj), labels, profile)
        path = judge_profile.save(store, profile, doc)
        se, sp = doc["sensitivity"], doc["specificity"]
        console.info(
            f"judge profile {profile} ({result.estimate}): sensitivity for unsafe {se['true_positive']}/"
            f"{se['positives']}, specificity {sp['true_negative']}/{sp['negatives']} -> {path}"
        )
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
    ctx: typer.Context,
    labels: list[Path] = typer.Option(
        ...,
        "--labels",
        "-l",
        help="CSV or JSONL with prompt (or eval_set and id of a store eval set), response/completion "
        "and a human label (repeatable).",
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
    from saftool.cli import get_store
    from saftool.judges.learned import fit_files

    weights = fit_files(labels, out, human_column=human_column, c=c, seed=seed, store=get_store(ctx))
    fit = weights["fit"]
    console.info(
        f"fitted on {fit['rows']} answers ({fit['refusals']} refusals) from {len(labels)} files; "
        f"agreement on them (in-sample): {fit['in_sample_agreement']:.4f}"
    )
    typer.echo(str(out))


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="judge")
