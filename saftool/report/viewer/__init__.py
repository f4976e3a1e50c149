"""The report's viewer: one self-contained HTML file (figs/index.html) that opens from file:// with no
server and no network, holding the report's data and a page script that draws it.

    data = viewer_data(con, store, judge, tables, by_model, members)   # from report()
    html = render(data, figures)
    data = read_data(Path("figs/index.html").read_text())              # any tool, no browser

The data sits in `<script type="application/json" id="saftool-data" data-encoding=...>`:
`json` (the JSON text, `<` written as `\\u003c`) or, above `GZIP_ABOVE` bytes of JSON,
`gzip+base64` (the JSON text, gzip-compressed, then base64). Its layout, format version 1:

* `format`, `version`, `judge` (the report's judge), `judges` (every judge in the store), `notice`
  (why a view is empty, e.g. no judgments), `labels` (label codes index this list);
* `models`: [{name, group, seed, n_seeds}] in experiment order; `eval_sets`: [{name, kind}];
* `tables`: every report table as {title, columns, rows (lists), note}: the scores with every
  column the report gives (judge-corrected estimates where a judge profile exists), pooled, across
  seeds, the --compare test; `by_model`: the rows across seeds;
* `prompts`: columns eval_set (index), id, kind, text, input, category (index into `categories`,
  -1 for none); `answers`: columns model (index), prompt (index), response, label (code), safe
  (1, 0 or null), rationale (index into `rationales`); `answers_total` counts the store's answers
  (more than `answers` holds when it was sampled, see `viewer.sql.sample_prompts`);
* `verdicts`: {judge: [label code per answer, -1 where that judge gave none]} for every other
  judge; `judge_pairs`: [{a, b, n, agreement, kappa, confusion (labels x labels)}];
* `train_runs`: per trained model its record (base, method, preset, mix, manifest counts, tokens/s,
  wall time) and `loss` [[step, loss]]; `tokens`: per model and infer backend; `api`: per caller of a
  chat API: requests, cache hits, retries, tokens and `cost` in USD where `prices` names the model.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import math
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

from saftool.errors import UsageError
from saftool.judge import LABELS
from saftool.report.seeds import BY_MODEL_COLUMNS, Member, manifests, train_runs
from saftool.report.viewer import sql as v
from saftool.sql import connect, dict_rows, present_views
from saftool.store import Store

FORMAT = "saftool-viewer"
VERSION = 1
GZIP_ABOVE = 1_000_000  # bytes of JSON; below it the block stays readable text
MAX_ANSWERS = 200_000  # answers embedded at most; a larger store is sampled by prompt
LOSS_POINTS = 400  # a loss curve is thinned to about this many points
PRICE_FIELDS = ("input", "output")  # USD per million prompt / completion tokens


def _cell(value: Any) -> Any:
    if isinstance(value, float):  # six significant digits: a score's 4th decimal, a cost's cents
        return None if math.isnan(value) else float(f"{value:.6g}")
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)


def _table(
    title: str, columns: tuple[str, ...] | list[str], rows: list[dict[str, Any]], note: str = ""
) -> dict[str, Any]:
    # every key the rows carry, the declared columns first: columns another part of the report adds
    # to its rows (the judges' corrected intervals, say) reach the viewer without a change here
    names = list(dict.fromkeys([*columns, *(k for r in rows for k in r)]))
    return {
        "title": title,
        "columns": names,
        "rows": [[_cell(r.get(c)) for c in names] for r in rows],
        "note": note,
    }


def check_prices(prices: dict[str, Any] | None, where: str = "prices") -> dict[str, dict[str, float]]:
    """{model: {input, output}} in USD per million tokens, as given; anything else is an error."""
    checked: dict[str, dict[str, float]] = {}
    for model, price in (prices or {}).items():
        if not isinstance(price, dict) or set(price) - set(PRICE_FIELDS) or not price:
            raise UsageError(
                f"{where}: {model}: expected a table with {' and/or '.join(PRICE_FIELDS)} (USD per 1M tokens)"
            )
        for key, value in price.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise UsageError(f"{where}: {model}.{key}: expected a non-negative number, got {value!r}")
        checked[str(model)] = {k: float(val) for k, val in price.items()}
    return checked


def load_prices(path: str | Path) -> dict[str, dict[str, float]]:
    """The `[prices]` table of a TOML file (a run config may carry it): model -> input/output USD per
    1M tokens."""
    import tomllib

    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file (--prices)") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None
    if not isinstance(data.get("prices"), dict):
        raise UsageError(
            f'{path}: no [prices] table; write [prices."MODEL"] input = ..., output = ... (USD per 1M tokens)'
        )
    return check_prices(data["prices"], f"{path}: prices")


def _store_parts(store: Store, prices: dict[str, Any] | None) -> dict[str, Any]:
    """What the viewer shows without judgments: training runs and API use."""
    prices = check_prices(prices)
    mixes = manifests(store)
    runs = []
    for name, record in sorted(train_runs(store).items()):
        curve = record.get("loss_curve") or []
        stride = max(1, len(curve) // LOSS_POINTS)
        manifest = mixes.get(str(record.get("mix")))
        runs.append(
            {
                "model": name,
                **{
                    k: _cell(record.get(k))
                    for k in (
                        "base_model",
                        "method",
                        "preset",
                        "mix",
                        "template",
                        "tokens_seen",
                        "tokens_per_second",
                        "wall_seconds",
                        "completed",
                    )
                },
                "seed": (record.get("config") or {}).get("seed"),
                "manifest": None
                if manifest is None
                else {k: manifest.get(k) for k in ("n_total", "n_harmful", "n_benign", "style", "counts")},
                "loss": [[p.get("step"), _cell(p.get("loss"))] for p in curve[::stride]],
            }
        )
    api = []
    con = connect(store, ["api_usage"])
    if "api_usage" in present_views(con):
        for row in dict_rows(
            con,
            """SELECT regexp_extract(filename, '([^/]+)/usage\\.jsonl$', 1) AS stage, namespace, model,
                      sum(requests) AS requests, sum(cache_hits) AS cache_hits, sum(retries) AS retries,
                      sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens
               FROM api_usage GROUP BY ALL ORDER BY stage, namespace, model""",
        ):
            price = prices.get(row["model"])
            row["cost"] = (
                None
                if price is None
                else (
                    row["prompt_tokens"] * price.get("input", 0)
                    + row["completion_tokens"] * price.get("output", 0)
                )
                / 1e6
            )
            api.append({k: _cell(val) for k, val in row.items()})
    return {"train_runs": runs, "api": api, "prices": prices}


def empty_data(store: Store, notice: str, prices: dict[str, Any] | None = None) -> dict[str, Any]:
    """The data of a viewer for a store without judgments: it says so, and shows the rest."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "notice": notice,
        "judge": None,
        "judges": [],
        "labels": list(LABELS),
        "models": [],
        "eval_sets": [],
        "tables": [],
        "by_model": [],
        "categories": [],
        "prompts": {"eval_set": [], "id": [], "kind": [], "text": [], "input": [], "category": []},
        "answers": {"model": [], "prompt": [], "response": [], "label": [], "safe": [], "rationale": []},
        "rationales": [],
        "answers_total": 0,
        "verdicts": {},
        "judge_pairs": [],
        "tokens": [],
        **_store_parts(store, prices),
    }


def kappa(confusion: list[list[int]]) -> float | None:
    """Cohen's kappa of a square confusion matrix; None when chance agreement is total."""
    n = sum(map(sum, confusion))
    if n == 0:
        return None
    observed = sum(confusion[i][i] for i in range(len(confusion))) / n
    rows = [sum(r) for r in confusion]
    cols = [sum(c) for c in zip(*confusion)]
    expected = sum(r * c for r, c in zip(rows, cols)) / (n * n)
    return None if expected == 1 else (observed - expected) / (1 - expected)


def _index(values: list[Any]) -> tuple[list[Any], dict[Any, int]]:
    distinct = list(dict.fromkeys(values))
    return distinct, {value: i for i, value in enumerate(distinct)}


def viewer_data(
    con,
    store: Store,
    judge: str,
    tables: list[Any],
    by_model: list[dict[str, Any]],
    members: dict[str, Member],
    *,
    prices: dict[str, Any] | None = None,
    max_answers: int = MAX_ANSWERS,
) -> dict[str, Any]:
    """The viewer's data (the module's layout) from the report's connection and tables."""
    label_code = {label: i for i, label in enumerate(LABELS)}
    models = list(dict.fromkeys(r["model"] for r in tables[0].rows))
    model_index = {m: i for i, m in enumerate(models)}
    prompt_rows = dict_rows(con, v.prompts(con, max_answers))
    eval_sets, eval_index = _index([p["eval_set"] for p in prompt_rows])
    kinds = {}
    for p in prompt_rows:
        kinds.setdefault(p["eval_set"], set()).add(p["kind"])
    categories, category_index = _index(sorted({p["category"] for p in prompt_rows if p["category"]}))
    prompt_index = {(p["eval_set"], p["id"]): i for i, p in enumerate(prompt_rows)}
    answer_rows = dict_rows(con, v.answers(con, max_answers))
    rationales, rationale_index = _index([a["rationale"] for a in answer_rows])
    answer_keys = {(a["model"], a["eval_set"], a["id"]): i for i, a in enumerate(answer_rows)}

    judges = [
        r["judge"]
        for r in dict_rows(con, "SELECT DISTINCT judge FROM ja WHERE judge IS NOT NULL ORDER BY judge")
    ]
    verdicts = {}
    for other in judges:
        if other == judge:
            continue
        codes = [-1] * len(answer_rows)
        for row in dict_rows(con, v.verdicts(con), {"judge": other}):
            i = answer_keys.get((row["model"], row["eval_set"], row["id"]))
            if i is not None:
                codes[i] = label_code.get(row["label"], -1)
        verdicts[other] = codes
    pairs: dict[tuple[str, str], list[list[int]]] = {}
    for row in dict_rows(con, v.judge_pairs(con)):
        matrix = pairs.setdefault((row["judge_a"], row["judge_b"]), [[0] * len(LABELS) for _ in LABELS])
        if row["label_a"] in label_code and row["label_b"] in label_code:  # piped files may hold others
            matrix[label_code[row["label_a"]]][label_code[row["label_b"]]] += row["n"]
    judge_pairs = []
    for (a, b), matrix in pairs.items():
        n = sum(map(sum, matrix))
        if n == 0:
            continue
        judge_pairs.append(
            {
                "a": a,
                "b": b,
                "n": n,
                "agreement": _cell(sum(matrix[i][i] for i in range(len(matrix))) / n),
                "kappa": _cell(kappa(matrix)),
                "confusion": matrix,
            }
        )

    return {
        "format": FORMAT,
        "version": VERSION,
        "notice": None,
        "judge": judge,
        "judges": judges,
        "labels": list(LABELS),
        "models": [
            {"name": m, "group": members[m].group, "seed": members[m].seed, "n_seeds": members[m].n_seeds}
            for m in models
        ],
        "eval_sets": [
            {"name": name, "kind": next(iter(kinds[name])) if len(kinds[name]) == 1 else "mixed"}
            for name in eval_sets
        ],
        "tables": [_table(t.title, t.columns, t.rows, t.note) for t in tables],
        "by_model": _table("Across seeds", BY_MODEL_COLUMNS, by_model),
        "categories": categories,
        "prompts": {
            "eval_set": [eval_index[p["eval_set"]] for p in prompt_rows],
            "id": [p["id"] for p in prompt_rows],
            "kind": [p["kind"] for p in prompt_rows],
            "text": [p["prompt"] or "" for p in prompt_rows],
            "input": [p["input"] for p in prompt_rows],
            "category": [category_index.get(p["category"], -1) for p in prompt_rows],
        },
        "answers": {
            "model": [model_index[a["model"]] for a in answer_rows],
            "prompt": [prompt_index[(a["eval_set"], a["id"])] for a in answer_rows],
            "response": [a["response"] for a in answer_rows],
            "label": [label_code.get(a["label"], -1) for a in answer_rows],
            "safe": [None if a["safe"] is None else int(a["safe"]) for a in answer_rows],
            "rationale": [rationale_index[a["rationale"]] for a in answer_rows],
        },
        "rationales": rationales,
        "answers_total": dict_rows(con, v.answer_count(con))[0]["n"],
        "verdicts": verdicts,
        "judge_pairs": judge_pairs,
        "tokens": [{k: _cell(val) for k, val in r.items()} for r in dict_rows(con, v.tokens(con))],
        **_store_parts(store, prices),
    }


def _asset(name: str) -> str:
    return files("saftool.report.viewer").joinpath("assets", name).read_text(encoding="utf-8")


def encode(data: dict[str, Any]) -> tuple[str, str]:
    """(encoding, text) of the data block; `<` escaped so no `</script>` can end it early."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    if len(text.encode()) <= GZIP_ABOVE:
        return "json", text
    packed = gzip.compress(text.encode(), compresslevel=6, mtime=0)
    return "gzip+base64", base64.b64encode(packed).decode()


def render(data: dict[str, Any], figures: list[Path] | tuple[Path, ...] = ()) -> str:
    """The viewer page: template, style, script, data block and the PNG figures, in one file."""
    encoding, block = encode(data)
    images = "".join(
        f"<figure><img alt='{html.escape(p.stem)}' src='data:image/png;base64,"
        f"{base64.b64encode(p.read_bytes()).decode()}'><figcaption>{html.escape(p.stem)}</figcaption></figure>"
        for p in figures
        if p.suffix == ".png"
    )
    values = {
        "STYLE": _asset("viewer.css"),
        "SCRIPT": _asset("viewer.js"),
        "ENCODING": encoding,
        "FIGURES": images,
        "DATA": block,
    }
    # one pass over the template only, so nothing inside the values is taken for a placeholder
    return re.sub(r"\{\{([A-Z]+)\}\}", lambda m: values[m.group(1)], _asset("viewer.html"))


_BLOCK = re.compile(
    r'<script type="application/json" id="saftool-data" data-encoding="([^"]+)">(.*?)</script>', re.DOTALL
)


def read_data(page: str) -> dict[str, Any]:
    """The data block of a viewer page, decoded (what another tool needs to read a report)."""
    found = _BLOCK.search(page)
    if found is None:
        raise ValueError("no saftool-data block in this page")
    encoding, text = found.groups()
    if encoding == "gzip+base64":
        text = gzip.decompress(base64.b64decode(text)).decode()
    elif encoding != "json":
        raise ValueError(f"unknown data encoding {encoding!r}")
    return json.loads(text)
