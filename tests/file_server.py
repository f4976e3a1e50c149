"""A static file server on 127.0.0.1 for download tests: real HTTP, with a request counter.

    with FileServer({"/a.csv": b"instruction\\nx\\n"}) as server:
        urllib.request.urlopen(server.url + "/a.csv")
        assert server.requests == ["/a.csv"]

Unknown paths answer 404.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler

from tests.loopback import LoopbackServer


class FileServer(LoopbackServer):
    def __init__(self, files: dict[str, bytes]):
        self.files = dict(files)
        self.requests: list[str] = []
        super().__init__()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                with server._lock:
                    server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        return Handler
