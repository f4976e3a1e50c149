"""An OpenAI chat-completions (and completions) server on 127.0.0.1 for tests: real HTTP, real JSON,
injectable faults.

    with FakeChatServer(reply=lambda body: "Yes") as server:
        server.inject("429", "500", "slow", "malformed")   # consumed one per request, in order
        ... OPENAI_BASE_URL=server.url ...
        assert server.requests == 5

`reply(body)` gets the parsed request body and returns the assistant's text. The default replies with
the last user message reversed, which is deterministic and distinguishable per prompt.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.loopback import LoopbackServer

FAULTS = ("429", "500", "503", "slow", "malformed", "empty", "drop")


def default_reply(body: dict[str, Any]) -> str:
    """The last user message (chat) or the prompt (completions), reversed."""
    return (body["prompt"] if "prompt" in body else body["messages"][-1]["content"])[::-1]


class FakeChatServer(LoopbackServer):
    path_prefix = "/v1"

    def __init__(self, reply: Callable[[dict[str, Any]], str] = default_reply, slow_seconds: float = 3.0):
        self.reply = reply
        self.slow_seconds = slow_seconds
        self.requests = 0
        self.bodies: list[dict[str, Any]] = []
        self.auth_headers: list[str] = []
        self._faults: list[str] = []
        super().__init__()

    def inject(self, *faults: str) -> None:
        """Queue faults; each of the next requests gets one, in order."""
        for fault in faults:
            if fault not in FAULTS:
                raise ValueError(f"unknown fault {fault!r}; one of {FAULTS}")
        with self._lock:
            self._faults.extend(faults)

    def always_fail(self, fault: str = "500", times: int = 10_000) -> None:
        self.inject(*([fault] * times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _next_fault(self) -> str | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                chat = self.path.rstrip("/").endswith("/chat/completions")
                if not chat and not self.path.rstrip("/").endswith("/completions"):
                    self._send(404, b'{"error": {"message": "not found"}}')
                    return
                body = json.loads(raw)
                with server._lock:
                    server.requests += 1
                    server.bodies.append(body)
                    server.auth_headers.append(self.headers.get("Authorization", ""))
                fault = server._next_fault()
                if fault in ("429", "500", "503"):
                    message = json.dumps({"error": {"message": f"injected {fault}", "type": "server_error"}})
                    self._send(int(fault), message.encode(), {"Retry-After": "0"} if fault == "429" else None)
                    return
                if fault == "slow":
                    time.sleep(server.slow_seconds)
                if fault == "malformed":
                    self._send(200, b'{"id": "x", "choices": [{"message": ')
                    return
                if fault == "empty":
                    self._send(
                        200, json.dumps({"id": "x", "object": "chat.completion", "choices": []}).encode()
                    )
                    return
                if fault == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return
                text = server.reply(body)
                sent = body.get("prompt") or " ".join(m["content"] for m in body.get("messages", []))
                prompt_tokens = len(sent.split())
                if chat:
                    choice = {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                else:
                    choice = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}
                completion = {
                    "id": f"cmpl-{server.requests}",
                    "object": "chat.completion" if chat else "text_completion",
                    "created": 0,
                    "model": body.get("model", "fake"),
                    "choices": [choice],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": len(text.split()),
                        "total_tokens": prompt_tokens + len(text.split()),
                    },
                }
                self._send(200, json.dumps(completion).encode())

        return Handler
