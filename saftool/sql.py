"""DuckDB over the store: one view per record kind.

Views (each present once the store holds at least one file of its kind):
  prompts, evals, mixes  - Item records (with `filename`)
  manifests              - mix manifests
  responses              - infer output
  judgments              - judge output
  train_runs             - one row per trained model
  pulled_models          - one row per pretrained model pulled by `model pull` (its source.json)
  api_usage              - one line per batch of chat-API calls (saftool.openai_chat): requests, cache hits, tokens
"""

from __future__ import annotations

from typing import Any

from saftool.errors import SaftoolError
from saftool.store import Store

# view name -> (glob relative to the store root, is newline-delimited)
VIEWS: dict[str, tuple[str, bool]] = {
    "prompts": ("prompts/*.jsonl", True),
    "evals": ("evals/*.jsonl", True),
    "mixes": ("mixes/*.jsonl", True),
    "manifests": ("mixes/*.manifest.json", False),
    "responses": ("responses/*/*.jsonl", True),
    "judgments": ("judgments/*/*/*.jsonl", True),
    "train_runs": ("models/*/train_run.json", False),
    "pulled_models": ("models/*/source.json", False),
    "api_usage": ("cache/*/usage.jsonl", True),
}


def view_files(store: Store, view: str) -> list[str]:
    """The files behind a view: its glob, without hidden (in-progress) and empty files."""
    pattern = VIEWS[view][0]
    return sorted(
        str(p) for p in store.root.glob(pattern) if not p.name.startswith(".") and p.stat().st_size > 0
    )


def file_list(files: list[str]) -> str:
    """`files` as a DuckDB list literal, quotes escaped."""
    return "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"


def connect(store: Store, views: list[str] | None = None):
    """An in-memory DuckDB connection with a view per record kind present in the store."""
    import duckdb

    con = duckdb.connect()
    for name, (_, ndjson) in VIEWS.items():
        if views is not None and name not in views:
            continue
        files = view_files(store, name)
        if not files:
            continue
        fmt = "newline_delimited" if ndjson else "auto"
        con.execute(
            f"CREATE VIEW {name} AS SELECT * FROM read_json({file_list(files)}, format='{fmt}', "
            f"union_by_name=true, filename=true, maximum_object_size=67108864)"
        )
    return con


def dict_rows(con, sql: str, params: Any = None) -> list[dict[str, Any]]:
    """The rows of `sql` on a connection, each as {column: value}."""
    cursor = con.execute(sql, params) if params is not None else con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def present_views(con) -> list[str]:
    return [
        row[0] for row in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    ]


def query(store: Store, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run SQL over the store; returns column names and rows."""
    import duckdb

    con = connect(store)
    try:
        cursor = con.execute(sql)
    except duckdb.CatalogException as exc:
        known = ", ".join(present_views(con)) or f"none (the store {store.root} is empty)"
        raise SaftoolError(f"{str(exc).splitlines()[0]}; views in this store: {known}") from None
    except duckdb.Error as exc:
        raise SaftoolError(f"SQL error: {str(exc).splitlines()[0]}") from None
    columns = [d[0] for d in cursor.description] if cursor.description else []
    return columns, cursor.fetchall()
