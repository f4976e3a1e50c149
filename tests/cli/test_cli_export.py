from __future__ import annotations

import shutil

from saftool.cli import app
from saftool.store import Store


def test_export_merges_a_store_adapter_into_a_loadable_model(runner, isolated_store, tmp_path):
    from transformers import AutoModelForCausalLM

    from tests.basefix import build_small_update_adapter

    adapter = build_small_update_adapter(tmp_path / "built")
    shutil.copytree(adapter, Store(isolated_store).model_dir("tuned"))
    out = tmp_path / "served"
    result = runner.invoke(app, ["export", "--model", "tuned", "--merged", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and f"-> {out}" in result.stderr  # no records to print
    assert AutoModelForCausalLM.from_pretrained(out).config.model_type == "llama"
    again = runner.invoke(app, ["export", "--model", "tuned", "--merged", str(out)])
    assert again.exit_code == 2
    assert again.stderr == f"error: {out} already exists and is not empty; choose a new directory\n"

