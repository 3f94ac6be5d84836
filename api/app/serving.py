"""How the API is served: uvicorn's options, written once, and the connection bounds they add.

uvicorn bounds a connection only once a response was sent (``--timeout-keep-alive``), and
``--limit-concurrency`` answers 503 to requests over its limit but still accepts every
connection. A client that opens connections and never finishes a request's headers therefore
kept each one, and its file descriptor, for ever: about 20,000 of them exhausted the process's
descriptors, and ``/health`` stopped answering. :class:`BoundedH11Protocol` (uvicorn's h11
protocol, chosen with ``--http``) adds two bounds, read from the knobs of app/tuning.py:

- ``ECOMIND_HEADER_TIMEOUT``: a request's headers must be complete this many seconds after the
  connection opened, or after the first byte of a later request on a kept-alive connection;
  otherwise the connection is closed. Bytes that trickle in do not extend it. An idle kept-alive
  connection is uvicorn's to close (``--timeout-keep-alive``, 75 s: longer than a load
  balancer's idle timeout, see below).
- A request's line and headers may take 16 KiB together (``MAX_HEAD_BYTES``), however they
  arrive; beyond it, 431 and the connection is closed.
- ``ECOMIND_MAX_CONNECTIONS``: at most this many connections are open at once. A new one beyond
  it closes the oldest connection still waiting for a request's headers (half-open, or idle
  between requests), so a flood of them cannot keep a real client out; when every connection is
  busy with a request, the new one is closed instead.

:data:`UVICORN_FLAGS` is what every server of the API passes to uvicorn: the image's CMD (and so
ECS and Kubernetes, which run it), and ``ecomind dev`` through :data:`UVICORN_OPTIONS`. A test
checks each of them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import resource
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from .tuning import KNOBS, Tuning

__all__ = ["UVICORN_FLAGS", "UVICORN_OPTIONS", "BoundedH11Protocol", "bounds"]

log = logging.getLogger("app.serving")

PROTOCOL = "app.serving:BoundedH11Protocol"
# The one definition: uvicorn.run()'s keyword arguments, and the same as command-line flags.
# An idle kept-alive connection lives longer than the load balancer's own idle timeout (the ALB's
# and ingress-nginx's upstream default is 60 s): a server that closes first races the balancer's
# next request on it, which the balancer answers 502 (AWS's advice for ALB targets).
UVICORN_OPTIONS: dict[str, str | int] = {"http": PROTOCOL, "timeout_keep_alive": 75}
UVICORN_FLAGS: tuple[str, ...] = tuple(
    f for k, v in UVICORN_OPTIONS.items() for f in ("--" + k.replace("_", "-"), str(v))
)
# Descriptors the process needs beside its clients' connections: the listeners, the database
# pool (20), Redis, the metrics listener, logs, the hashing pool, Python's own.
RESERVED_DESCRIPTORS = 128
# The most a request's line and headers may take together, blank line included: h11's own limit,
# enforced whether the head arrives in pieces or whole; beyond it, 431.
MAX_HEAD_BYTES = 16 * 1024
HEAD_TOO_LARGE = b"Request line and headers larger than 16 KiB."
# How long the rest of a refused head is read and dropped before the connection is closed.
LINGER_SECONDS = 2.0
# At most one line per this many seconds says the cap is reached: a flood must not flood the logs.
WARN_EVERY_SECONDS = 60.0


@dataclass(frozen=True)
class Bounds:
    header_timeout: float
    max_connections: int


@functools.cache
def bounds() -> Bounds:
    """The bounds of this process, from its environment, once.

    The soft limit of open files is raised (up to the hard one) to hold the cap and the
    descriptors the process needs besides; when the hard limit is lower, the cap is lowered
    to fit, and a line says so."""
    tuning = Tuning.from_env()
    needed = tuning.max_connections + RESERVED_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        soft = raised
    cap = tuning.max_connections
    if soft != resource.RLIM_INFINITY and soft < needed:
        cap = max(1, soft - RESERVED_DESCRIPTORS)
        log.warning(
            "%s=%d needs %d open files and this process may open %d (ulimit -n): at most %d connections",
            KNOBS["max_connections"],
            tuning.max_connections,
            needed,
            soft,
            cap,
        )
    return Bounds(tuning.header_timeout, cap)


class _Waiting(OrderedDict["BoundedH11Protocol", None]):
    """A server's connections waiting for a request's headers, the longest-waiting first."""

    warned_at = float("-inf")


def _waiting_of(server_state: ServerState) -> _Waiting:
    found: _Waiting | None = getattr(server_state, "ecomind_waiting", None)
    if found is None:
        found = _Waiting()
        server_state.ecomind_waiting = found  # type: ignore[attr-defined]
    return found


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for a request's headers and a cap on connections."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.bounds = bounds()
        self.waiting = _waiting_of(server_state)
        self.header_deadline: asyncio.TimerHandle | None = None
        self.refused = False  # answered 431: what the client still sends is dropped

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.bounds.max_connections:
            self._make_room()
            if transport.is_closing():
                return
        self.waiting[self] = None
        self.header_deadline = self.loop.call_later(self.bounds.header_timeout, self._headers_too_late)

    def _make_room(self) -> None:
        now = time.monotonic()
        if now - self.waiting.warned_at >= WARN_EVERY_SECONDS:
            self.waiting.warned_at = now
            log.warning(
                "%d connections open (%s): closing the oldest waiting for a request's headers",
                len(self.connections) - 1,
                KNOBS["max_connections"],
            )
        oldest = next(iter(self.waiting), None)
        (oldest or self)._close()

    def handle_events(self) -> None:
        if self.conn.their_state is h11.IDLE and self._head_too_large():
            self._refuse_head()
            return
        super().handle_events()
        if self.transport.is_closing() or self not in self.connections:  # closed, or upgraded
            self._forget()
        elif self.conn.their_state is not h11.IDLE:  # a request's headers arrived
            self._forget()
        else:  # between requests
            self.waiting.setdefault(self)
            # Part of the next request is here: its headers have the deadline a new connection has.
            if self.header_deadline is None and self.conn.trailing_data[0]:
                self.header_deadline = self.loop.call_later(self.bounds.header_timeout, self._headers_too_late)

    def _head_too_large(self) -> bool:
        # h11 refuses a head over its limit only while it waits for the rest: one that arrives
        # whole in a read, however large, it parses. Here the size is the size, however it arrives.
        received, _ = self.conn.trailing_data
        return len(received) >= MAX_HEAD_BYTES and received.find(b"\r\n\r\n", 0, MAX_HEAD_BYTES) == -1

    def _refuse_head(self) -> None:
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")]
        self.transport.write(self.conn.send(h11.Response(status_code=431, headers=headers)) or b"")
        self.transport.write(self.conn.send(h11.Data(data=HEAD_TOO_LARGE)) or b"")
        self.transport.write(self.conn.send(h11.EndOfMessage()) or b"")
        # Closed at once with the client's bytes unread, the socket would reset the connection,
        # and the client could lose the answer: it gets our end of the stream, and what it still
        # sends is read and dropped for a moment, then the connection is closed.
        self.refused = True
        self._forget()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self._close)

    def data_received(self, data: bytes) -> None:
        if not self.refused:
            super().data_received(data)

    def _headers_too_late(self) -> None:
        self.header_deadline = None
        if self.conn.their_state is h11.IDLE:
            self._close()

    def _forget(self) -> None:
        self.waiting.pop(self, None)
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def _close(self) -> None:
        self._forget()
        # Out of the count at once: connection_lost, which uvicorn uncounts it in, comes later.
        self.connections.discard(self)
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        super().connection_lost(exc)
