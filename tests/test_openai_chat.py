"""The shared ChatClient against a real local HTTP server with injected faults."""

from __future__ import annotations

import pytest

from saftool.errors import SaftoolError
from saftool.openai_chat import ChatClient, ChatRequest


def _client(cache_dir, **kwargs) -> ChatClient:
    return ChatClient("fake", cache_dir=cache_dir, backoff=0.01, **kwargs)


def _requests(n: int) -> list[ChatRequest]:
    return [ChatRequest.of(("user", f"prompt {i}")) for i in range(n)]


@pytest.mark.parametrize("fault", ["429", "500", "503", "malformed", "empty", "drop"])
def test_each_fault_is_retried(fake_openai, tmp_path, fault):
    fake_openai.inject(fault)
    client = _client(tmp_path)
    result = client.complete(ChatRequest.of(("user", "hello")))
    assert result.text == "olleh"
    assert fake_openai.requests == 2
    assert client.stats.retries == 1


def test_slow_reply_times_out_and_is_retried(fake_openai, tmp_path):
    fake_openai.inject("slow")
    client = _client(tmp_path, timeout=0.5)
    assert client.complete(ChatRequest.of(("user", "abc"))).text == "cba"
    assert client.stats.retries == 1


def test_rerun_is_served_from_the_cache(fake_openai, tmp_path):
    fake_openai.inject("429", "500", "malformed")
    first = dict(_client(tmp_path, concurrency=4).complete_many(_requests(10)))
    sent = fake_openai.requests
    assert sent == 13
    client = _client(tmp_path)
    second = dict(client.complete_many(_requests(10)))
    assert fake_openai.requests == sent  # zero new requests
    assert client.stats.cache_hits == 10
    assert {i: r.text for i, r in first.items()} == {i: r.text for i, r in second.items()}
    assert all(r.cached for r in second.values())


def test_token_counts_are_summed(fake_openai, tmp_path):
    client = _client(tmp_path)
    client.complete(ChatRequest.of(("user", "one two three")))
    assert client.stats.prompt_tokens == 3 and client.stats.completion_tokens == 3


def test_api_key_never_reaches_the_cache(fake_openai, tmp_path):
    list(_client(tmp_path).complete_many(_requests(3)))
    assert fake_openai.auth_headers[0] == "Bearer sk-test-secret-key"
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert b"sk-test-secret-key" not in path.read_bytes()
        assert "sk-test" not in path.name


def test_persistent_failure_says_how_many_finished(fake_openai, tmp_path):
    fake_openai.always_fail("500")
    with pytest.raises(SaftoolError, match="failed after 3 attempts: HTTP 500"):
        list(_client(tmp_path, max_retries=2).complete_many(_requests(2)))


def test_each_batch_appends_its_usage_to_the_cache_folder(fake_openai, tmp_path):
    import json

    fake_openai.inject("429")
    list(_client(tmp_path, namespace="judge:x").complete_many(_requests(4)))
    list(_client(tmp_path, namespace="judge:x").complete_many(_requests(6)))  # 4 cached, 2 new
    lines = [json.loads(line) for line in (tmp_path / "usage.jsonl").read_text().splitlines()]
    spent = [{k: line[k] for k in ("namespace", "model", "requests", "cache_hits", "retries")} for line in lines]
    assert spent == [
        {"namespace": "judge:x", "model": "fake", "requests": 5, "cache_hits": 0, "retries": 1},
        {"namespace": "judge:x", "model": "fake", "requests": 2, "cache_hits": 4, "retries": 0},
    ]
    assert lines[1]["prompt_tokens"] == 4 and lines[1]["completion_tokens"] == 4  # "prompt 4", "prompt 5"
