from __future__ import annotations

import pytest

from saftool.errors import UsageError
from saftool.hub import resolve_model
from saftool.store import Store
from tests.hubfix import COMMIT, cache_model


@pytest.fixture
def hf_home(tmp_path, monkeypatch):
    home = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


@pytest.fixture
def model_files(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "config.json").write_text('{"model_type": "llama"}')
    (source / "model.safetensors").write_bytes(b"weights")
    return source


def test_a_hub_id_resolves_from_the_offline_cache(hf_home, model_files):
    snapshot = cache_model(hf_home, "org/llama", model_files, refs=("main", "v1"))
    for spec in ("org/llama", "org/llama@main", "org/llama@v1", f"org/llama@{COMMIT}"):
        source = resolve_model(spec)
        assert (source.path, source.id, source.revision) == (snapshot, "org/llama", COMMIT)
    assert (source.path / "model.safetensors").read_bytes() == b"weights"


def test_hub_cache_dir_follows_hf_hub_cache(tmp_path, monkeypatch, model_files):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere" / "hub"))
    snapshot = cache_model(tmp_path / "elsewhere", "org/llama", model_files)
    assert resolve_model("org/llama").path == snapshot


def test_a_hub_id_not_in_the_cache_names_the_download(hf_home, model_files):
    with pytest.raises(UsageError) as err:
        resolve_model("meta-llama/Llama-2-7b-hf")
    assert str(err.value) == (
        f"meta-llama/Llama-2-7b-hf is not in the Hugging Face cache ({hf_home / 'hub'}) and HF_HUB_OFFLINE "
        "is set: download it with `hf download meta-llama/Llama-2-7b-hf`"
    )
    cache_model(hf_home, "org/llama", model_files)
    with pytest.raises(UsageError) as err:
        resolve_model("org/llama@v2")
    assert str(err.value) == (
        f"org/llama@v2 is not in the Hugging Face cache ({hf_home / 'hub'}; it holds main, {COMMIT}): "
        "download it with `hf download org/llama --revision v2`"
    )


def test_directories_store_names_and_bad_specs(tmp_path, monkeypatch, model_files):
    store = Store(tmp_path / "store")
    (store.models / "m").mkdir(parents=True)
    assert resolve_model("m", store).path == store.models / "m" and resolve_model("m", store).id == "m"
    monkeypatch.chdir(tmp_path)
    source = resolve_model("./src")
    assert (source.path, source.id, source.revision) == (model_files, "src", None)
    assert resolve_model("src/", store).path == model_files  # an existing relative directory wins
    with pytest.raises(UsageError, match="model directory ./nope does not exist"):
        resolve_model("./nope")
    with pytest.raises(UsageError, match="unknown model 'nope'; known: m"):
        resolve_model("nope", store)
    for bad in ("a/b/c", "org/name@", "@main"):
        with pytest.raises(UsageError, match="is neither a directory nor a Hub id"):
            resolve_model(bad)
