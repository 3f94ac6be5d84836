"""A loopback HTTP proxy in front of moto's server that counts Secrets Manager calls.

It can also add a fixed delay per request (to stand for the AWS round trip),
answer ``ThrottlingException`` for chosen operations, or be stopped to play an
outage. Tests and benchmarks use it to count what the secret layer really sends.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class AwsProxy:
    def __init__(self, upstream: str, *, delay: float = 0.0) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.delay = delay
        self.counts: Counter[str] = Counter()
        self.throttle: Callable[[str], bool] = lambda op: False
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.up = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()

    def start(self, port: int = 0) -> AwsProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                if not proxy.up:
                    # An outage: drop kept-alive connections too, without an answer.
                    self.close_connection = True
                    return
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                op = (self.headers.get("X-Amz-Target") or "other").rsplit(".", 1)[-1]
                with proxy._lock:
                    proxy.counts[op] += 1
                if proxy.delay:
                    time.sleep(proxy.delay)
                if proxy.throttle(op):
                    payload = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
                    self._reply(400, {"Content-Type": "application/x-amz-json-1.1"}, payload)
                    return
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                conn.request("POST", self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                self._reply(resp.status, {k: v for k, v in resp.getheaders() if k.lower() not in _HOP}, data)

            def _reply(self, status: int, headers: dict[str, str], data: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.up = True
        return self

    def stop(self) -> None:
        self.up = False
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
