from __future__ import annotations

import json

import pytest

from saftool import sql
from saftool.cli import app
from saftool.errors import SaftoolError
from saftool.store import Store


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def store(isolated_store):
    store = Store()
    _write(store.responses / "m1" / "advbench.jsonl", [{"id": "a", "response": "x"}, {"id": "b", "response": "y"}])
    _write(store.responses / "m2" / "advbench.jsonl", [{"id": "a", "response": "z", "extra": 1}])
    return store


def test_views_union_files_by_name(store):
    columns, rows = sql.query(store, "SELECT count(*) AS n, count(extra) AS e FROM responses")
    assert columns == ["n", "e"]
    assert rows == [(3, 1)]


def test_missing_view_names_the_ones_present(store):
    with pytest.raises(SaftoolError, match="views in this store: responses"):
        sql.query(store, "SELECT * FROM judgments")


def test_sql_command_prints_json_and_csv(store, runner):
    result = runner.invoke(app, ["sql", "SELECT id, count(*) AS n FROM responses GROUP BY id ORDER BY id", "--json"])
    assert result.exit_code == 0, result.output
    assert [json.loads(line) for line in result.stdout.splitlines()] == [{"id": "a", "n": 2}, {"id": "b", "n": 1}]
    result = runner.invoke(app, ["sql", "SELECT id FROM responses ORDER BY id LIMIT 1", "--csv"])
    assert result.stdout.splitlines() == ["id", "a"]


def test_sql_error_is_one_line_exit_1(store, runner):
    result = runner.invoke(app, ["sql", "SELEC nonsense"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: SQL error:")
