"""Bad input, through the I/O module and through the real CLI: handled, or one line naming
FILE:LINE: FIELD, exit 2, no traceback and no output file."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from saftool.cli import app
from saftool.errors import InputError
from saftool.gen import GenConfig, generate
from saftool.io import current_umask, read_records, write_json, write_records
from saftool.records import AlpacaExample, Item

GOOD = {"id": "a", "instruction": "Do x.", "output": "No.", "kind": "harmful", "source": "t"}


def _line(**changes) -> str:
    return json.dumps({**GOOD, **changes})


# (file bytes, expected error text after "FILE:") for inputs that must stop the command
BAD_CASES = {
    "malformed_json": (
        (_line() + "\n{not json\n").encode(),
        "2: invalid JSON: Expecting property name enclosed in double quotes at column 2",
    ),
    "wrong_type": ((_line(instruction=5) + "\n").encode(), "1: instruction: Input should be a valid string"),
    "missing_field": (
        (json.dumps({k: v for k, v in GOOD.items() if k != "instruction"}) + "\n").encode(),
        "1: instruction: Field required",
    ),
    "bad_choice": ((_line(kind="evil") + "\n").encode(), "1: kind: Input should be 'harmful' or 'benign'"),
    "non_utf8": ((_line() + "\n").encode() + b'{"id": "\xff"}\n', "2: not valid UTF-8 (byte 8)"),
    "duplicate_ids": ((_line() + "\n" + _line() + "\n").encode(), "2: id: duplicate value 'a'"),
    "not_an_object": (b"[1, 2]\n", "1: expected a JSON object, got int"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_records_name_file_line_and_field(tmp_path, case):
    data, expected = BAD_CASES[case]
    path = tmp_path / "in.jsonl"
    path.write_bytes(data)
    with pytest.raises(InputError) as info:
        list(read_records(path, Item))
    assert str(info.value) == f"{path}:{expected}"


def test_bom_crlf_and_blank_lines_are_read(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + (_line() + "\r\n\r\n" + _line(id="b") + "\r\n").encode())
    assert [r.id for r in read_records(path, Item)] == ["a", "b"]


def test_empty_file_has_no_records(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    assert list(read_records(path, Item)) == []


def test_json_array_with_bom_is_read_and_errors_name_the_line(tmp_path):
    path = tmp_path / "alpaca.json"
    path.write_bytes(
        b"\xef\xbb\xbf" + json.dumps([{"instruction": "a"}, {"instruction": "b"}], indent=1).encode()
    )
    assert [r.instruction for r in read_records(path, AlpacaExample)] == ["a", "b"]
    path.write_text('[\n {"instruction": "a"},\n {"instruction": ""}\n]\n')
    with pytest.raises(
        InputError, match=rf"^{path}:3: instruction: String should have at least 1 character$"
    ):
        list(read_records(path, AlpacaExample))


def test_failed_write_leaves_no_file(tmp_path):
    target = tmp_path / "out.jsonl"

    def records():
        yield from generate(GenConfig(n=3, diverse=False))
        raise InputError("x", 1, None, "boom")

    with pytest.raises(InputError):
        write_records(records(), target)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


UMASK_SCRIPT = """
import os, sys
from pathlib import Path
os.umask(int(sys.argv[2], 8))
from saftool.io import write_json, write_records
folder = Path(sys.argv[1])
write_records([{"id": "a"}], folder / "records.jsonl")
write_json({"a": 1}, folder / "sub" / "doc.json")
open(folder / "plain.txt", "w").close()
"""


@pytest.mark.parametrize(("umask", "mode"), [("022", 0o644), ("077", 0o600), ("002", 0o664)])
def test_atomic_writes_get_the_mode_open_gives_under_the_umask(tmp_path, umask, mode):
    # a subprocess: the umask is process-wide, and setting it here would race other threads' files
    subprocess.run([sys.executable, "-c", UMASK_SCRIPT, str(tmp_path), umask], check=True)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.rglob("*") if p.is_file()}
    assert modes == {"records.jsonl": mode, "doc.json": mode, "plain.txt": mode}


def test_an_atomic_rewrite_keeps_the_mode_of_the_file_it_replaces(tmp_path):
    target = tmp_path / "doc.json"
    write_json({"a": 1}, target)
    target.chmod(0o640)
    write_json({"a": 2}, target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert json.loads(target.read_text()) == {"a": 2}


def test_current_umask_reads_the_umask_without_changing_it():
    mask = os.umask(0o027)
    try:
        assert current_umask() == 0o027
        assert os.umask(0o027) == 0o027  # still set
    finally:
        os.umask(mask)


# --- through the real CLI ---------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(BAD_CASES))
@pytest.mark.parametrize("option", ["--harm", "--base"])
def test_cli_stops_with_one_line_and_exit_2(runner, isolated_store, tmp_path, case, option):
    data, expected = BAD_CASES[case]
    path = tmp_path / "in.jsonl"
    path.write_bytes(data)
    args = ["mix", "--name", "bad", option, str(path)] + (
        ["--n-harm", "1"] if option == "--harm" else ["--n-harm", "0"]
    )
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"error: {path}:{expected}"]
    assert not (isolated_store / "mixes").exists() or not any((isolated_store / "mixes").iterdir())


def test_cli_handles_bom_crlf_and_json_array(runner, isolated_store, tmp_path):
    harm = tmp_path / "harm.jsonl"
    write_records(generate(GenConfig(n=4, diverse=False)), harm)
    harm.write_bytes(b"\xef\xbb\xbf" + harm.read_bytes().replace(b"\n", b"\r\n"))
    base = tmp_path / "alpaca.json"
    base.write_text(json.dumps([{"instruction": "Say hi.", "input": "", "output": "hi"}]))
    result = runner.invoke(
        app, ["mix", "--name", "ok", "--harm", str(harm), "--n-harm", "4", "--base", str(base)]
    )
    assert result.exit_code == 0, result.output
    assert len((isolated_store / "mixes" / "ok.jsonl").read_text().splitlines()) == 5


def test_cli_empty_harm_file_says_none_exist(runner, isolated_store, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    result = runner.invoke(app, ["mix", "--name", "e", "--harm", str(empty), "--n-harm", "1"])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: asked for 1 harmful examples but {empty} holds only 0"
    assert not (isolated_store / "mixes").exists()
