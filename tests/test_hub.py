from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler

import pytest

from saftool.errors import UsageError
from saftool.hub import resolve_model
from saftool.store import Store
from tests.hubfix import COMMIT, cache_model
from tests.loopback import LoopbackServer


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


class FakeHub(LoopbackServer):
    """The Hub's model-info route as huggingface_hub reads its errors: status, X-Error-Code, X-Error-Message."""

    def _handler(self):
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                if "/org/gated/" in self.path:
                    status, code, message = (
                        403,
                        "GatedRepo",
                        "Access to model org/gated is restricted and you are not in the authorized list.",
                    )
                elif "/revision/v9" in self.path:
                    status, code, message = 404, "RevisionNotFound", "Invalid rev id: v9"
                else:
                    status, code, message = 404, "RepoNotFound", "Repository not found"
                body = json.dumps({"error": message}).encode()
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                self.send_header("X-Error-Message", message)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


def test_the_hubs_refusals_online_are_one_line_each(hf_home, monkeypatch):
    """Online (a Hub on a real socket via HF_ENDPOINT): a gated model gives the Hub's reason, a missing
    one or revision says so; nothing is cached."""
    import huggingface_hub.constants

    monkeypatch.delenv("HF_HUB_OFFLINE")
    # huggingface_hub reads HF_HUB_OFFLINE once, at import, and this test process imported it offline
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    with FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        with pytest.raises(UsageError) as err:
            resolve_model("org/gated")
        assert str(err.value) == (
            "org/gated is gated on the Hugging Face Hub (Access to model org/gated is restricted and you are not "
            "in the authorized list.): accept its terms on huggingface.co/org/gated, then `hf auth login`"
        )
        with pytest.raises(UsageError, match=r"^org/nothing is not on the Hugging Face Hub \(or is private"):
            resolve_model("org/nothing")
        with pytest.raises(UsageError, match=r"^org/model has no revision 'v9' on the Hugging Face Hub$"):
            resolve_model("org/model@v9")
    assert not (hf_home / "hub").exists() or not any((hf_home / "hub").rglob("*.safetensors"))
