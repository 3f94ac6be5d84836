"""A loopback HTTP proxy in front of moto's server that counts Secrets Manager calls.

It can also add a fixed delay per request (to stand for the AWS round trip),
answer ``ThrottlingException`` for chosen operations, answer what AWS answers and an
emulator cannot (an expired session token, say), or be stopped to play an outage.
Tests and benchmarks use it to count what the secret layer really sends.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


def _signed_region(authorization: str) -> str:
    """The region of a SigV4 signature: Credential=KEY/DATE/REGION/SERVICE/aws4_request."""
    marker = "Credential="
    if marker not in authorization:
        return ""
    scope = authorization.split(marker, 1)[1].split(",", 1)[0].split("/")
    return scope[2] if len(scope) > 2 else ""


def _query_action(body: bytes) -> str:
    """The operation of a query-protocol request (STS, IAM): its form's Action."""
    try:
        return parse_qs(body.decode()).get("Action", ["other"])[0]
    except UnicodeDecodeError:
        return "other"


class AwsProxy:
    def __init__(self, upstream: str, *, delay: float = 0.0) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.delay = delay
        self.counts: Counter[str] = Counter()
        self.throttle: Callable[[str], bool] = lambda op: False
        # An answer of the proxy's own for an operation (status, content type, body), or None
        # to pass the request on: what AWS answers and moto never does.
        self.answer: Callable[[str], tuple[int, str, bytes] | None] = lambda op: None
        # A regional outage: requests signed for these regions are dropped without an
        # answer (mode "drop", like an unreachable endpoint), answered 503 ("5xx"), or
        # left unanswered for ``hang_seconds`` ("hang", a black hole past the TCP connect).
        self.down_regions: set[str] = set()
        self.outage_mode = "drop"
        self.hang_seconds = 30.0
        self.by_region: Counter[tuple[str, str]] = Counter()
        # Requests per second allowed per operation (a token bucket each, burst = rate);
        # beyond it the proxy answers ThrottlingException, as Secrets Manager does.
        self.limits: dict[str, float] = {}
        self._buckets: dict[str, tuple[float, float]] = {}
        self.throttled: Counter[str] = Counter()
        # Requests inside their delay at once, now and at most since the last reset: how many
        # calls a client had in flight together.
        self._delayed = 0
        self.most_in_flight = 0
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
            self.by_region.clear()
            self.throttled.clear()
            self._buckets.clear()
            self.most_in_flight = 0

    def _take(self, op: str) -> bool:
        rate = self.limits.get(op)
        if not rate:
            return True
        with self._lock:
            now = time.monotonic()
            tokens, last = self._buckets.get(op, (rate, now))
            tokens = min(rate, tokens + (now - last) * rate)
            if tokens < 1:
                self._buckets[op] = (tokens, now)
                return False
            self._buckets[op] = (tokens - 1, now)
            return True

    def start(self, port: int = 0) -> AwsProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Without it, Nagle's algorithm and the client's delayed ACK add ~40 ms
                # to some exchanges, which would be measured as Secrets Manager latency.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                if not proxy.up:
                    # An outage: drop kept-alive connections too, without an answer.
                    self.close_connection = True
                    return
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                op = (self.headers.get("X-Amz-Target") or _query_action(body)).rsplit(".", 1)[-1]
                region = _signed_region(self.headers.get("Authorization", ""))
                with proxy._lock:
                    proxy.counts[op] += 1
                    proxy.by_region[(region, op)] += 1
                if region in proxy.down_regions:
                    if proxy.outage_mode == "hang":
                        until = time.monotonic() + proxy.hang_seconds
                        while region in proxy.down_regions and time.monotonic() < until:
                            time.sleep(0.05)  # ends early when the test brings the region back
                        self.close_connection = True
                        return
                    if proxy.outage_mode == "5xx":
                        payload = json.dumps({"__type": "InternalServiceError", "message": "down"}).encode()
                        self._reply(503, {"Content-Type": "application/x-amz-json-1.1"}, payload)
                    else:
                        self.close_connection = True
                    return
                if proxy.delay:
                    with proxy._lock:
                        proxy._delayed += 1
                        proxy.most_in_flight = max(proxy.most_in_flight, proxy._delayed)
                    time.sleep(proxy.delay)
                    with proxy._lock:
                        proxy._delayed -= 1
                own = proxy.answer(op)
                if own is not None:
                    status, content_type, payload = own
                    self._reply(status, {"Content-Type": content_type}, payload)
                    return
                if proxy.throttle(op) or not proxy._take(op):
                    with proxy._lock:
                        proxy.throttled[op] += 1
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
                self.send_response_only(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                # One write for head and body (end_headers() would send the head alone).
                self._headers_buffer.append(b"\r\n" + data)
                self.flush_headers()

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
