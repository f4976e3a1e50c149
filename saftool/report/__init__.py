"""`report`: score tables with 95% intervals and the study's figures, from the judgments in the store.

    result = report(store, "figs/")                       # judge: the default judge's, else keyword's
    result = report(store, "figs/", compare=("a", "b"))  # plus an exact McNemar test
    result = report(store, "figs/", profile="learned")   # judge-corrected columns from a profile

The numbers come from DuckDB SQL (`saftool.report.sql`); the figures only draw those tables
(`saftool.report.plot`). Models trained from one recipe with several seeds are grouped
(`saftool.report.seeds`): the scores keep one row per seed, and scores_by_model.csv holds the
mean over seeds with a 95% t-interval. Writes scores.csv, scores_by_model.csv, scores.md, PNG and
SVG figures and index.html, the single-file viewer (`saftool.report.viewer`).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from saftool.errors import SaftoolError, UsageError
from saftool.io import atomic_open
from saftool.judge import DEFAULT_JUDGE, parse_spec
from saftool.judges import profile as judge_profile
from saftool.report import plot
from saftool.report import sql as q
from saftool.report.seeds import BY_MODEL_COLUMNS, Member, across_seeds, seed_members
from saftool.sql import connect, dict_rows, view_files
from saftool.store import Store, slug

SCORE_COLUMNS = (
    "model", "eval_set", "metric", "n", "hits", "unknown", "score", "low", "high",
    *judge_profile.CORRECTED_COLUMNS,
)  # fmt: skip
CASCADE_COLUMNS = ("model", "eval_set", "answers", "sent_to_second", "saved")
# scores.csv: the score table's columns with each model's training seed beside its name
CSV_COLUMNS = ("model", "seed", *SCORE_COLUMNS[1:])
COMPARE_COLUMNS = ("seed", "eval_set", "n_pairs", "a_only", "b_only", "both_ok", "neither", "p_value")


class ReportConfig(BaseModel):
    """Where the report goes and whose judgments it scores: `saftool report` takes its options'
    defaults from these fields, and the run plan renders one into report's argv (`saftool.stageconfig`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    out: str = Field(default="figs", description="Folder for scores.csv/md, figures and index.html.")
    judge: str | None = Field(
        default=None,
        description="Whose judgments to score [default: learned's if present, else keyword's, else the most numerous].",
    )


@dataclass
class Table:
    title: str
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]
    note: str = ""  # what a reader must know to read the numbers (which judge profile, if any)


@dataclass
class ReportResult:
    judge: str
    out_dir: Path
    tables: list[Table]
    by_model: list[dict[str, Any]] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)

    @property
    def scores(self) -> Table:
        return self.tables[0]


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test of min(b, c) against b + c at one half,
    summed in log space so that tens of thousands of discordant pairs stay fast and exact enough."""
    n = b + c
    if n == 0:
        return 1.0
    logs = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2)
        for i in range(min(b, c) + 1)
    ]
    top = max(logs)
    tail = math.exp(top) * math.fsum(math.exp(v - top) for v in logs)
    return min(1.0, 2 * tail)


def choose_judge(con, judge: str | None) -> str:
    present = [r["judge"] for r in dict_rows(con, q.JUDGES)]
    if judge is None:
        preferred = [name for name in (DEFAULT_JUDGE, "keyword") if name in present]
        return (preferred or present)[0]
    if judge not in present:
        raise UsageError(f"no judgments by {judge!r} in the store; judges present: {', '.join(present)}")
    return judge


def open_judgments(store: Store, judge: str | None = None):
    """A DuckDB connection holding the store's judgments (`ja`) and the chosen judge's (`j`)."""
    files = view_files(store, "judgments")
    if not files:
        raise SaftoolError(f"no judgments in the store {store.root}; run `saftool judge` first")
    con = connect(store, ["manifests", "train_runs"])
    q.load_all(con, files)
    judge = choose_judge(con, judge)
    q.load_judgments(con, judge)
    return con, judge


def compute(
    store: Store,
    judge: str | None = None,
    compare: tuple[str, str] | None = None,
    profile: str | None = None,
):
    """The report's tables, without writing anything: (judge, [scores, pooled, across seeds?,
    compare?, cascade?]). The scores carry judge-corrected columns from `profile` (default: the
    one named after the judge)."""
    con, judge = open_judgments(store, judge)
    tables, _, _ = _tables(con, store, judge, compare, profile)
    return judge, tables


def _tables(con, store: Store, judge: str, compare: tuple[str, str] | None, profile: str | None = None):
    scores = dict_rows(con, q.scores(con))
    if not scores:
        raise SaftoolError(f"no judgments by {judge} name a model, eval_set and kind; nothing to score")
    members = seed_members(store, list(dict.fromkeys(r["model"] for r in scores)))
    for row in scores:
        row["seed"] = members[row["model"]].seed
    by_model = across_seeds(scores, members)
    configs = {r["judge_config"] for r in dict_rows(con, q.JUDGE_CONFIGS)}
    note = judge_profile.correct_scores(store, judge, configs, scores, profile)
    tables = [
        Table(f"Scores (judge: {judge})", SCORE_COLUMNS, scores, note),
        Table(
            "Pooled per model",
            ("model", "safety", "safety_low", "safety_high", "conservativeness", "cons_low", "cons_high"),
            dict_rows(con, q.pooled(con)),
        ),
    ]
    if any(m.n_seeds > 1 for m in members.values()):
        tables.append(Table("Across seeds: mean and 95% t-interval over seeds", BY_MODEL_COLUMNS, by_model))
    if compare:
        tables.append(_compare(con, members, *compare))
    cascade = parse_spec(judge).cascade
    if cascade is not None:
        second = cascade[1].text
        cost = dict_rows(con, q.CASCADE, {"second": second})
        tables.append(Table(f"Cascade: answers sent to {second} and requests saved", CASCADE_COLUMNS, cost))
    return tables, by_model, members


def _side(members: dict[str, Member], name: str) -> dict[int | None, str]:
    """--compare's name as {seed: model}: a seed group's members, or the one model of that name."""
    group = {m.seed: m.model for m in members.values() if m.group == name and m.n_seeds > 1}
    if group:
        return group
    if name in members:
        return {members[name].seed: name}
    known = sorted({m.model for m in members.values()} | {m.group for m in members.values()})
    raise UsageError(
        f"unknown model {name!r} for --compare; judged models and seed groups: {', '.join(known)}"
    )


def _compare(con, members: dict[str, Member], a: str, b: str) -> Table:
    """Exact McNemar tests of a against b; seed groups are paired seed by seed, plus all seeds pooled."""
    side_a, side_b = _side(members, a), _side(members, b)
    if set(side_a.values()) & set(side_b.values()):
        raise UsageError(f"--compare {a} {b}: that compares a model with itself; name two different models")
    if len(side_a) > 1 and len(side_b) > 1:
        common = sorted(set(side_a) & set(side_b))
        if not common:
            raise UsageError(f"--compare {a} {b}: the two seed groups have no seed in common")
        pairs = [(seed, side_a[seed], side_b[seed]) for seed in common]
    elif len(side_a) > 1:
        (single_b,) = side_b.values()
        pairs = [(seed, model, single_b) for seed, model in sorted(side_a.items())]
    elif len(side_b) > 1:
        (single_a,) = side_a.values()
        pairs = [(seed, single_a, model) for seed, model in sorted(side_b.items())]
    else:
        pairs = [(None, a, b)]
    rows: list[dict[str, Any]] = []
    summed: dict[str, dict[str, Any]] = {}  # per eval set, over the seeds
    for seed, model_a, model_b in pairs:
        sql, params = q.compare(con, model_a, model_b)
        for row in dict_rows(con, sql, params):
            rows.append({"seed": seed, **row})
            total = summed.setdefault(
                row["eval_set"], {"seed": "all", **{k: 0 for k in row if k != "eval_set"}}
            )
            for key, value in row.items():
                if key != "eval_set":
                    total[key] += value
            total["eval_set"] = row["eval_set"]
    if not rows:
        raise UsageError(
            f"--compare {a} {b}: the two models answered no prompt in common (same eval set and id)"
        )
    if len(pairs) > 1:
        rows += list(summed.values())
    for row in rows:
        row["p_value"] = mcnemar_exact(row["a_only"], row["b_only"])
    pairing = ", paired within each seed" if len(pairs) > 1 else ""
    return Table(f"McNemar exact test: {a} (a) vs {b} (b){pairing}", COMPARE_COLUMNS, rows)


def report(
    store: Store,
    out_dir: str | Path,
    *,
    judge: str | None = None,
    compare: tuple[str, str] | None = None,
    prices: dict[str, Any] | None = None,
    profile: str | None = None,
) -> ReportResult:
    """Write scores.csv, scores_by_model.csv, scores.md, the figures (PNG + SVG) and the viewer,
    index.html, into `out_dir`. A store without judgments still gets a viewer saying so (and
    showing what else the store holds) before the error."""
    from saftool.report import viewer

    prices = viewer.check_prices(prices)  # before anything is written
    out = Path(out_dir)
    try:
        con, judge = open_judgments(store, judge)
    except SaftoolError as exc:
        if view_files(store, "judgments"):
            raise
        out.mkdir(parents=True, exist_ok=True)
        with atomic_open(out / "index.html") as fh:
            fh.write(viewer.render(viewer.empty_data(store, str(exc), prices)))
        raise SaftoolError(f"{exc} (wrote {out / 'index.html'} saying so)") from None
    tables, by_model, members = _tables(con, store, judge, compare, profile)
    out.mkdir(parents=True, exist_ok=True)
    result = ReportResult(judge, out, tables, by_model)
    scores = tables[0].rows
    _write_csv(out / "scores.csv", CSV_COLUMNS, scores)
    _write_csv(out / "scores_by_model.csv", BY_MODEL_COLUMNS, by_model)
    with atomic_open(out / "scores.md") as fh:
        fh.write("\n\n".join(markdown(t) for t in tables) + "\n")
    seeded = any(m.n_seeds > 1 for m in members.values())
    result.figures = _figures(by_model if seeded else scores, tables[1].rows, out, seeded)
    data = viewer.viewer_data(con, store, judge, tables, by_model, members, prices=prices)
    with atomic_open(out / "index.html") as fh:
        fh.write(viewer.render(data, result.figures))
    return result


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    with atomic_open(path) as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _figures(rows: list[dict[str, Any]], pooled: list[dict[str, Any]], out: Path, seeded: bool) -> list[Path]:
    """One chart per metric and eval set. `rows` are score rows, or with seed groups the rows
    across seeds (mean, 95% t-interval, each seed's score drawn as a dot)."""
    paths: list[Path] = []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:  # rows arrive grouped and ordered by SQL; this only splits them per chart
        if seeded:
            row = {**row, "score": row["mean"]}
        if row["score"] is not None:
            groups.setdefault((row["metric"], row["eval_set"]), []).append(row)
    note = " (mean over seeds, 95% t-interval)" if seeded else ""
    for (metric, eval_set), chart in groups.items():
        if metric == "conservativeness":
            paths += plot.conservativeness_bars(
                chart, eval_set, out, f"conservativeness_{slug(eval_set)}", note
            )
        elif metric == "safety":
            paths += plot.safety_lines(chart, eval_set, out, f"safety_{slug(eval_set)}", note)
    if pooled:
        paths += plot.safety_vs_conservativeness(pooled, out, "safety_vs_conservativeness")
    return paths


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 0.01 and value else f"{value:.2f}"
    return str(value)


def markdown(table: Table) -> str:
    lines = [
        f"### {table.title}",
        "",
        "| " + " | ".join(table.columns) + " |",
        "|" + "|".join("---" for _ in table.columns) + "|",
    ]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in table.columns) + " |" for r in table.rows]
    if table.note:
        lines += ["", table.note]
    return "\n".join(lines)


def rich_table(table: Table):
    from rich.table import Table as RichTable

    out = RichTable(*table.columns, title=table.title, caption=table.note or None)
    for row in table.rows:
        out.add_row(*(_fmt(row.get(c)) for c in table.columns))
    return out
