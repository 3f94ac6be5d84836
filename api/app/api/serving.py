"""How the API is served: uvicorn's options, written once, and the connection bounds they add.

uvicorn bounds a connection only once a response was sent (``--timeout-keep-alive``), and
``--limit-concurrency`` answers 503 to requests over its limit but still accepts every
connection. A client that opens connections and never finishes a request's headers therefore
kept each one, and its file descriptor, for ever: about 20,000 of them exhausted the process's
descriptors, and ``/health`` stopped answering; so did a client that sent whole headers
announcing a body and then a byte of it every few seconds. :class:`BoundedH11Protocol`
(uvicorn's h11 protocol, chosen with ``--http``) adds three bounds, read from the knobs of
app/settings/knobs.py:

- ``ECOMIND_HEADER_TIMEOUT``: a request's headers must be complete this many seconds after the
  connection opened, or after the first byte of a later request on a kept-alive connection;
  otherwise the connection is closed. Bytes that trickle in do not extend it. An idle kept-alive
  connection is uvicorn's to close (``--timeout-keep-alive``, 75 s: longer than a load
  balancer's idle timeout, see below).
- ``ECOMIND_BODY_TIMEOUT``: a request's body must be whole this many seconds after its headers;
  otherwise the request is answered 408 (when the app has not answered it yet) and the
  connection is closed. Bytes that trickle in do not extend it either.
- A request's line and headers may take 16 KiB together (``MAX_HEAD_BYTES``), however they
  arrive; beyond it, 431 and the connection is closed.
- ``ECOMIND_MAX_CONNECTIONS``: at most this many connections are open at once. A new one beyond
  it closes a connection idle between requests first (HTTP lets a server close one at any time,
  and its client opens another), the one idle longest; when none is idle, the connection
  stalled longest on its client, for a request's headers (half-open) or for its body (answered
  408). A new connection that has not sent its request yet is never closed in favour of an idle
  kept-alive one, so a flood of busy keep-alive clients cannot push out a probe that has just
  connected. Only when every connection is busy with a whole request is the new one closed.

WebSockets are off (``--ws none``): the API has none, and a request asking to upgrade is
answered as plain HTTP, never switched, and logged like any other request.

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
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string
from uvicorn.server import ServerState

from app.observe.logs import WARN_EVERY_SECONDS, CountedLine
from app.settings.knobs import KNOBS, Tuning

__all__ = [
    "UVICORN_FLAGS",
    "UVICORN_OPTIONS",
    "BoundedH11Protocol",
    "bounds",
    "quiet_accept_errors",
]

log = logging.getLogger("app.api.serving")

PROTOCOL = "app.api.serving:BoundedH11Protocol"
# The one definition: uvicorn.run()'s keyword arguments, and the same as command-line flags.
# An idle kept-alive connection lives longer than the load balancer's own idle timeout (the ALB's
# and ingress-nginx's upstream default is 60 s): a server that closes first races the balancer's
# next request on it, which the balancer answers 502 (AWS's advice for ALB targets).
# The API has no WebSocket route: "none" keeps uvicorn from switching a connection to a WebSocket
# library that happens to be installed (uvicorn[standard] brings one), a protocol nobody bounds here.
UVICORN_OPTIONS: dict[str, str | int] = {"http": PROTOCOL, "timeout_keep_alive": 75, "ws": "none"}
UVICORN_FLAGS: tuple[str, ...] = tuple(
    f for k, v in UVICORN_OPTIONS.items() for f in ("--" + k.replace("_", "-"), str(v))
)
# Descriptors the process needs beside its clients' connections: the listeners, the database
# pool (ECOMIND_REQUEST_THREADS + 2), Redis, the metrics listener, logs, the hashing pool, Python's own.
RESERVED_DESCRIPTORS = 128
# The most a request's line and headers may take together, blank line included: h11's own limit,
# enforced whether the head arrives in pieces or whole; beyond it, 431.
MAX_HEAD_BYTES = 16 * 1024
HEAD_TOO_LARGE = b"Request line and headers larger than 16 KiB."
# How long the rest of a refused head is read and dropped before the connection is closed.
LINGER_SECONDS = 2.0
# What a stalled connection owes its server, as the cap's log line says it.
IDLE = "next request"
OWED = {"headers": "a request's headers", "body": "a request's body", IDLE: "its next request, idle"}
TIMEOUT_BODY = b"Request Timeout: the request's body did not arrive in time\n"

# asyncio's message for it (selector_events), once per refused accept: up to uvicorn's backlog
# (2048) lines, each with a traceback, every second while the process is out of descriptors.
ACCEPT_ERROR = "socket.accept() out of system resource"


def quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Have ``loop`` say that its listeners are out of descriptors once a minute, with a count,
    instead of once per refused connection; every other error goes where it went before."""
    previous = loop.get_exception_handler()
    line = CountedLine(log, logging.ERROR)

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if context.get("message") == ACCEPT_ERROR and isinstance(exc, OSError):
            line.note(
                "the server cannot accept connections: %s; it tries again every second. Fix: raise the "
                "open-files limit (ulimit -n) or lower %s",
                exc.strerror or type(exc).__name__,
                KNOBS["max_connections"],
            )
        elif previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


@dataclass(frozen=True)
class Bounds:
    header_timeout: float
    body_timeout: float
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
    return Bounds(tuning.header_timeout, tuning.body_timeout, cap)


class _Stalled(OrderedDict["BoundedH11Protocol", None]):
    """A server's connections waiting on their client (for a request's headers, or for its body),
    the one that has waited longest first; and what the cap did since its last line."""

    warned_at = float("-inf")
    evicted = 0
    refused = 0


def _stalled_of(server_state: ServerState) -> _Stalled:
    found: _Stalled | None = getattr(server_state, "ecomind_stalled", None)
    if found is None:
        found = _Stalled()
        server_state.ecomind_stalled = found  # type: ignore[attr-defined]
    return found


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with deadlines for a request's headers and body, and a cap on connections."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.bounds = bounds()
        self.stalled = _stalled_of(server_state)
        self.deadline: asyncio.TimerHandle | None = None
        self.waiting_for: str | None = None  # "headers", "body" or IDLE: what the client owes
        self.waiting_since = 0.0
        self.refused = False  # answered 431: what the client still sends is dropped

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.bounds.max_connections:
            self._make_room()
            if transport.is_closing():
                return
        self._wait_for("headers")

    def _make_room(self) -> None:
        # An idle kept-alive connection first (its client reconnects), else the one stalled longest.
        idle = (conn for conn in self.stalled if conn.waiting_for == IDLE)
        oldest = next(idle, None) or next(iter(self.stalled), None)
        if oldest is not None:
            self.stalled.evicted += 1
            waited = time.monotonic() - oldest.waiting_since
            what = (
                f"closed the connection stalled longest ({waited:.0f} s waiting for "
                f"{OWED[oldest.waiting_for or 'headers']}) to accept a new one"
            )
            oldest._give_up()
        else:
            self.stalled.refused += 1
            what = "every one is busy with a request: refused a new connection"
            self._close()
        now = time.monotonic()
        if now - self.stalled.warned_at >= WARN_EVERY_SECONDS:
            self.stalled.warned_at = now
            log.warning(
                "%d connections open, the cap (%s=%d): %s "
                "(since the last such line: %d closed to make room, %d refused)",
                len(self.connections) - (1 if self in self.connections else 0),
                KNOBS["max_connections"],
                self.bounds.max_connections,
                what,
                self.stalled.evicted,
                self.stalled.refused,
            )
            self.stalled.evicted = self.stalled.refused = 0

    def handle_events(self) -> None:
        if self.conn.their_state is h11.IDLE and self._head_too_large():
            self._refuse_head()
            return
        super().handle_events()
        state = self.conn.their_state
        if self.transport.is_closing() or self not in self.connections:  # closed, or upgraded
            self._forget()
        elif state is h11.IDLE:  # between requests
            if self.waiting_for not in (IDLE, "headers"):
                self._forget()
                self.stalled[self] = None  # idle: first to make room, but uvicorn's keep-alive closes it
                self.waiting_for, self.waiting_since = IDLE, time.monotonic()
            # Part of the next request is here: its headers have the deadline a new connection has.
            if self.deadline is None and self.conn.trailing_data[0]:
                self.waiting_for = "headers"
                self.deadline = self.loop.call_later(self.bounds.header_timeout, self._too_late)
        elif state is h11.SEND_BODY:  # the headers are here, the body is not yet whole
            if self.waiting_for != "body":
                self._wait_for("body")
        else:  # the request is whole: the app has it
            self._forget()

    def _unsupported_upgrade_warning(self) -> None:
        # uvicorn warns twice per request asking for an Upgrade, and advises installing a WebSocket
        # library: WebSockets are off on purpose, and the request is answered as plain HTTP.
        pass

    def _wait_for(self, what: str) -> None:
        self._forget()
        self.waiting_for, self.waiting_since = what, time.monotonic()
        self.stalled[self] = None
        timeout = self.bounds.header_timeout if what == "headers" else self.bounds.body_timeout
        self.deadline = self.loop.call_later(timeout, self._too_late)

    def _too_late(self) -> None:
        self.deadline = None
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
            self._give_up()

    def _give_up(self) -> None:
        """Close a connection whose client owes us a request's headers or body: a request the app
        still waits on is answered 408 first."""
        cycle = self.cycle
        if (
            self.conn.their_state is h11.SEND_BODY
            and self.conn.our_state is h11.SEND_RESPONSE
            and cycle is not None
            and not cycle.response_started
        ):
            # The app's next receive() says the client left, and whatever it sends is dropped.
            cycle.disconnected = True
            cycle.message_event.set()
            headers = [
                *self.server_state.default_headers,
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(TIMEOUT_BODY)).encode()),
                (b"connection", b"close"),
            ]
            try:
                answer = h11.Response(status_code=408, headers=headers, reason=b"Request Timeout")
                self.transport.write(self.conn.send(answer))
                self.transport.write(self.conn.send(h11.Data(data=TIMEOUT_BODY)))
                self.transport.write(self.conn.send(h11.EndOfMessage()))
            except h11.LocalProtocolError:  # pragma: no cover - h11 refused the answer: just close
                pass
            else:
                if self.access_log:
                    self.access_logger.info(
                        '%s - "%s %s HTTP/%s" %d',
                        get_client_addr(self.scope),
                        self.scope["method"],
                        get_path_with_query_string(self.scope),
                        self.scope["http_version"],
                        408,
                    )
        self._close()

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

    def _forget(self) -> None:
        self.stalled.pop(self, None)
        self.waiting_for = None
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _close(self) -> None:
        self._forget()
        # Out of the count at once: connection_lost, which uvicorn uncounts it in, comes later.
        self.connections.discard(self)
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        super().connection_lost(exc)
