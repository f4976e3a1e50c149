"""`report`: score tables with 95% intervals and the study's figures, from the judgments in the store.

    result = report(store, "figs/")                       # judge: keyword if present
    result = report(store, "figs/", compare=("a", "b"))  # plus an exact McNemar test

The numbers come from DuckDB SQL (`saftool.report_sql`); the figures only draw those tables
(`saftool.report_plot`). Writes scores.csv, scores.md, PNG and SVG figures and a self-contained
index.html holding every table and figure.
"""

from __future__ import annotations

import base64
import csv
import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saftool import report_plot
from saftool import report_sql as q
from saftool.errors import SaftoolError, UsageError
from saftool.io import atomic_open
from saftool.sql import connect, view_files
from saftool.store import Store, slug

SCORE_COLUMNS = ("model", "eval_set", "metric", "n", "hits", "unknown", "score", "low", "high")
COMPARE_COLUMNS = ("eval_set", "n_pairs", "a_only", "b_only", "both_ok", "neither", "p_value")


@dataclass
class Table:
    title: str
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]


@dataclass
class ReportResult:
    judge: str
    out_dir: Path
    tables: list[Table]
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


def _rows(con, sql: str, params: Any = None) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params) if params is not None else con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def choose_judge(con, judge: str | None) -> str:
    present = [r["judge"] for r in _rows(con, q.JUDGES)]
    if judge is None:
        return "keyword" if "keyword" in present else present[0]
    if judge not in present:
        raise UsageError(f"no judgments by {judge!r} in the store; judges present: {', '.join(present)}")
    return judge


def compute(store: Store, judge: str | None = None, compare: tuple[str, str] | None = None):
    """The report's tables, without writing anything: (judge, [scores, pooled, compare?])."""
    files = view_files(store, "judgments")
    if not files:
        raise SaftoolError(f"no judgments in the store {store.root}; run `saftool judge` first")
    con = connect(store, ["manifests", "train_runs"])
    q.load_all(con, files)
    judge = choose_judge(con, judge)
    q.load_judgments(con, judge)
    scores = _rows(con, q.scores(con))
    if not scores:
        raise SaftoolError(f"no judgments by {judge} name a model, eval_set and kind; nothing to score")
    tables = [
        Table(f"Scores (judge: {judge})", SCORE_COLUMNS, scores),
        Table(
            "Pooled per model",
            ("model", "safety", "safety_low", "safety_high", "conservativeness", "cons_low", "cons_high"),
            _rows(con, q.pooled(con)),
        ),
    ]
    if compare:
        models = {r["model"] for r in _rows(con, q.MODELS)}
        for name in compare:
            if name not in models:
                raise UsageError(
                    f"unknown model {name!r} for --compare; judged models: {', '.join(sorted(models))}"
                )
        sql, params = q.compare(con, *compare)
        paired = _rows(con, sql, params)
        for row in paired:
            row["p_value"] = mcnemar_exact(row["a_only"], row["b_only"])
        a, b = compare
        tables.append(Table(f"McNemar exact test: {a} (a) vs {b} (b)", COMPARE_COLUMNS, paired))
    return judge, tables


def report(
    store: Store, out_dir: str | Path, *, judge: str | None = None, compare: tuple[str, str] | None = None
) -> ReportResult:
    """Write scores.csv, scores.md, the figures (PNG + SVG) and index.html into `out_dir`."""
    judge, tables = compute(store, judge, compare)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = ReportResult(judge, out, tables)
    scores = tables[0].rows
    with atomic_open(out / "scores.csv") as fh:
        writer = csv.DictWriter(fh, fieldnames=SCORE_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(scores)
    with atomic_open(out / "scores.md") as fh:
        fh.write("\n\n".join(markdown(t) for t in tables) + "\n")
    result.figures = _figures(scores, tables[1].rows, out)
    with atomic_open(out / "index.html") as fh:
        fh.write(index_html(result))
    return result


def _figures(scores: list[dict[str, Any]], pooled: list[dict[str, Any]], out: Path) -> list[Path]:
    paths: list[Path] = []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in scores:  # rows arrive grouped and ordered by SQL; this only splits them per chart
        if row["score"] is not None:
            groups.setdefault((row["metric"], row["eval_set"]), []).append(row)
    for (metric, eval_set), rows in groups.items():
        if metric == "conservativeness":
            paths += report_plot.conservativeness_bars(
                rows, eval_set, out, f"conservativeness_{slug(eval_set)}"
            )
        elif metric == "safety":
            paths += report_plot.safety_lines(rows, eval_set, out, f"safety_{slug(eval_set)}")
    if pooled:
        paths += report_plot.safety_vs_conservativeness(pooled, out, "safety_vs_conservativeness")
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
    return "\n".join(lines)


def rich_table(table: Table):
    from rich.table import Table as RichTable

    out = RichTable(*table.columns, title=table.title)
    for row in table.rows:
        out.add_row(*(_fmt(row.get(c)) for c in table.columns))
    return out


def index_html(result: ReportResult) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>saftool report</title><style>"
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}th{background:#eee}img{max-width:100%}"
        "</style></head><body>",
        f"<h1>saftool report</h1><p>Judge: {html.escape(result.judge)}. Scores in %, 95% Wilson intervals; "
        "<code>unknown</code> verdicts are counted apart and excluded from n.</p>",
    ]
    for table in result.tables:
        parts.append(f"<h2>{html.escape(table.title)}</h2><table><tr>")
        parts.append("".join(f"<th>{html.escape(c)}</th>" for c in table.columns) + "</tr>")
        for row in table.rows:
            cells = "".join(f"<td>{html.escape(_fmt(row.get(c)))}</td>" for c in table.columns)
            parts.append(f"<tr>{cells}</tr>")
        parts.append("</table>")
    parts.append("<h2>Figures</h2>")
    for path in result.figures:
        if path.suffix == ".png":
            data = base64.b64encode(path.read_bytes()).decode()
            parts.append(
                f"<figure><img alt='{html.escape(path.stem)}' src='data:image/png;base64,{data}'>"
                f"<figcaption>{html.escape(path.stem)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)
