"""One client for every OpenAI-compatible chat endpoint saftool talks to (gen, infer, judge), and for
the completions endpoint (`ChatRequest.prompt`) that `infer --endpoint completions` uses.

* A content-addressed on-disk cache: the key is a hash of the request (model, messages, decoding
  settings and a caller namespace), never of the API key or URL, so a rerun makes no requests.
* Concurrent requests from a thread pool, results yielded as they finish.
* Retries with exponential backoff (honouring Retry-After) on 429, 5xx, timeouts, dropped
  connections and malformed replies; other 4xx fail at once.
* Token counts from the server's `usage`, summed in `stats`; each `complete_many` call appends what
  it cost (requests, cache hits, retries, tokens) to `usage.jsonl` in the cache folder, which the
  report's viewer sums per caller (the `api_usage` view of saftool.sql).
The API key is passed to the SDK and nowhere else: not to the cache, the store or any message.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saftool.errors import MissingDependencyError, SaftoolError
from saftool.hashing import canonical_json
from saftool.io import JsonlAppender, atomic_open

BASE_URL_ENV = "OPENAI_BASE_URL"
API_KEY_ENV = "OPENAI_API_KEY"


class ChatError(SaftoolError):
    """The endpoint kept failing; `done` says how many requests had succeeded."""

    def __init__(self, message: str, done: int):
        self.done = done
        super().__init__(message)


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[tuple[str, str], ...] = ()  # (role, content) pairs, hashable
    temperature: float = 0.0
    max_tokens: int | None = None
    top_p: float | None = None  # sent only when set, so requests made before it keep their cache keys
    seed: int | None = None
    prompt: str | None = None  # raw text for the completions endpoint instead of chat messages

    @classmethod
    def of(
        cls,
        *messages: tuple[str, str],
        temperature: float = 0.0,
        max_tokens: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
    ):
        return cls(tuple(messages), temperature, max_tokens, top_p, seed)

    def payload(self, model: str) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model, "temperature": self.temperature}
        if self.prompt is not None:
            body["prompt"] = self.prompt
        else:
            body["messages"] = [{"role": role, "content": content} for role, content in self.messages]
        for key in ("max_tokens", "top_p", "seed"):
            if getattr(self, key) is not None:
                body[key] = getattr(self, key)
        return body


@dataclass
class ChatResult:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False


USAGE_FIELDS = ("requests", "cache_hits", "retries", "prompt_tokens", "completion_tokens")


@dataclass
class ChatStats:
    requests: int = 0  # HTTP requests sent, retries included
    cache_hits: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **deltas: int) -> None:
        with self._lock:
            for key, value in deltas.items():
                setattr(self, key, getattr(self, key) + value)


class ChatClient:
    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        cache_dir: str | Path | None = None,
        namespace: str = "",
        concurrency: int = 8,
        max_retries: int = 5,
        timeout: float = 60.0,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
    ):
        try:
            import openai
        except ImportError:  # pragma: no cover - openai is a core dependency
            raise MissingDependencyError("openai", "an OpenAI-compatible endpoint") from None
        self._openai = openai
        self.model = model
        self.base_url = base_url or os.environ.get(BASE_URL_ENV) or None
        key = api_key or os.environ.get(API_KEY_ENV)
        if not key:
            if not self.base_url:
                raise SaftoolError(f"set {API_KEY_ENV} (or {BASE_URL_ENV} for a local server that needs no key)")
            key = "not-needed"  # local OpenAI-compatible servers ignore the key
        self._client = openai.OpenAI(api_key=key, base_url=self.base_url, timeout=timeout, max_retries=0)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.namespace = namespace
        self.concurrency = max(1, concurrency)
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.stats = ChatStats()

    # cache
    def cache_key(self, request: ChatRequest) -> str:
        body = {"namespace": self.namespace, **request.payload(self.model)}
        return hashlib.sha256(canonical_json(body).encode()).hexdigest()

    def _cache_path(self, key: str) -> Path | None:
        return self.cache_dir / key[:2] / f"{key}.json" if self.cache_dir else None

    def _cache_get(self, key: str) -> ChatResult | None:
        path = self._cache_path(key)
        if path is None or not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return ChatResult(data["text"], data.get("prompt_tokens", 0), data.get("completion_tokens", 0), True)
        except (ValueError, KeyError):
            return None  # a damaged entry is simply asked again

    def _cache_put(self, key: str, result: ChatResult) -> None:
        path = self._cache_path(key)
        if path is None:
            return
        entry = {"text": result.text, "prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens}
        with atomic_open(path) as fh:
            json.dump(entry, fh)

    # requests
    def complete(self, request: ChatRequest) -> ChatResult:
        key = self.cache_key(request)
        hit = self._cache_get(key)
        if hit is not None:
            self.stats.add(cache_hits=1)
            return hit
        result = self._send_with_retries(request)
        self._cache_put(key, result)
        return result

    def _send_with_retries(self, request: ChatRequest) -> ChatResult:
        openai = self._openai
        attempt = 0
        while True:
            self.stats.add(requests=1)
            retry_after = None
            try:
                if request.prompt is not None:
                    response = self._client.completions.create(**request.payload(self.model))
                    text = response.choices[0].text
                else:
                    response = self._client.chat.completions.create(**request.payload(self.model))
                    text = response.choices[0].message.content
                if not isinstance(text, str):
                    raise ValueError("reply has no message content")
                usage = getattr(response, "usage", None)
                result = ChatResult(
                    text,
                    int(getattr(usage, "prompt_tokens", 0) or 0),
                    int(getattr(usage, "completion_tokens", 0) or 0),
                )
                self.stats.add(prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens)
                return result
            except openai.APIStatusError as exc:
                if exc.status_code != 429 and exc.status_code < 500:
                    raise SaftoolError(f"{self._where()} refused the request: HTTP {exc.status_code}") from None
                reason = f"HTTP {exc.status_code}"
                retry_after = _retry_after(exc)
            except (openai.APITimeoutError, openai.APIConnectionError) as exc:
                reason = type(exc).__name__
            except (openai.APIResponseValidationError, ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
                reason = f"malformed reply ({type(exc).__name__})"
            if attempt >= self.max_retries:
                raise SaftoolError(f"{self._where()} failed after {attempt + 1} attempts: {reason}")
            delay = retry_after if retry_after is not None else self.backoff * (2**attempt)
            time.sleep(min(self.max_backoff, delay) * (1 + 0.1 * random.random()))
            attempt += 1
            self.stats.add(retries=1)

    def _where(self) -> str:
        return f"chat endpoint {self.base_url or 'api.openai.com'} (model {self.model})"

    def complete_many(self, requests: Sequence[ChatRequest]) -> Iterator[tuple[int, ChatResult]]:
        """Yield (index, result) as requests finish. Cached ones come first, without a request.

        If a request fails for good, no new ones start; those in flight finish and are yielded, then
        a ChatError says how many succeeded, so the caller keeps (and can write) every finished result.
        """
        before = self._counts()
        try:
            yield from self._complete_many(requests)
        finally:
            self._log_usage(before)

    def _counts(self) -> dict[str, int]:
        with self.stats._lock:
            return {k: getattr(self.stats, k) for k in USAGE_FIELDS}

    def _log_usage(self, before: dict[str, int]) -> None:
        """Append this call's share of `stats` to the cache folder's usage.jsonl (one whole line)."""
        spent = {k: v - before[k] for k, v in self._counts().items()}
        if self.cache_dir is None or not (spent["requests"] or spent["cache_hits"]):
            return
        with JsonlAppender(self.cache_dir / "usage.jsonl") as log:
            log.write([{"namespace": self.namespace, "model": self.model, **spent, "time": time.time()}])

    def _complete_many(self, requests: Sequence[ChatRequest]) -> Iterator[tuple[int, ChatResult]]:
        done = 0
        pending_idx: list[int] = []
        for i, request in enumerate(requests):
            hit = self._cache_get(self.cache_key(request))
            if hit is None:
                pending_idx.append(i)
                continue
            self.stats.add(cache_hits=1)
            done += 1
            yield i, hit
        if not pending_idx:
            return
        failure: BaseException | None = None
        queue = iter(pending_idx)
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            running: dict[Future, int] = {}

            def submit_next() -> None:
                for i in queue:
                    running[pool.submit(self.complete, requests[i])] = i
                    return

            for _ in range(self.concurrency):
                submit_next()
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    i = running.pop(fut)
                    exc = fut.exception()
                    if exc is not None:
                        failure = failure or exc
                        continue
                    done += 1
                    yield i, fut.result()
                    if failure is None:
                        submit_next()
        if failure is not None:
            raise ChatError(f"{failure} ({done} of {len(requests)} done; rerun to continue)", done) from None


def _retry_after(exc: Any) -> float | None:
    try:
        value = exc.response.headers.get("retry-after")
        return float(value) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None
