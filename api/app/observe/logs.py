"""Request ids and JSON logs (``ECOMIND_LOG_FORMAT=json``).

Every request gets an id: the caller's ``X-Request-ID`` when it is a plain token
(letters, digits, ``.``, ``_``, ``-``; at most 64), else a new one. The response
carries it back in ``X-Request-ID``, and every log line written while the request is
served carries it as ``request_id`` (the access line included); an error no handler
answered is logged with its traceback and answered 500 here, with the id as well. What
the layers outside raise while a response is handed to them (the body limit's 413, sent
by Starlette itself) is theirs: its access line says what was answered.

JSON logs put one object per line (python-json-logger): ``time``, ``level``,
``logger``, ``message``, ``request_id``, and ``exc_info`` when there is one. Secret
values are scrubbed when a record is created (app/secrets/redact.py), before any
formatter sees it, so JSON lines are redacted like text ones.
"""

from __future__ import annotations

import errno
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

__all__ = [
    "REQUEST_ID_HEADER",
    "RESOURCE_ERRNOS",
    "WARN_EVERY_SECONDS",
    "CountedLine",
    "RequestIdMiddleware",
    "use_json_logs",
]

# At most one line per this many seconds says an event that floods (a cap reached, accept()
# failing): a flood must not flood the logs.
WARN_EVERY_SECONDS = 60.0
# accept() failing for want of descriptors or memory: the listener is out of system resources.
RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class CountedLine:
    """A log line written at most once per ``every`` seconds, saying how often its event happened
    since the last one: a flood of one event is one line a minute, not one line an event."""

    def __init__(self, logger: logging.Logger, level: int, every: float = WARN_EVERY_SECONDS) -> None:
        self._logger = logger
        self._level = level
        self._every = every
        self._lock = threading.Lock()
        self._count = 0
        self._written_at = float("-inf")

    def note(self, message: str, *args: object) -> None:
        """One more of the event; ``message`` (with ``args``) is written when the interval allows,
        followed by the count since the last line."""
        with self._lock:
            self._count += 1
            now = time.monotonic()
            if now - self._written_at < self._every:
                return
            count, self._count, self._written_at = self._count, 0, now
        self._logger.log(self._level, message + " (%d since the last such line)", *args, count)


REQUEST_ID_HEADER = "X-Request-ID"
_HEADER = REQUEST_ID_HEADER.lower().encode()  # ASGI header names are lower-case bytes
_VALID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
log = logging.getLogger("app.requests")
# uvicorn's loggers and the root; "uvicorn.access" does not propagate, so it gets the handler too.
_LOGGERS = ("", "uvicorn", "uvicorn.access")


class RequestIdMiddleware:
    """Pure ASGI (no per-request task or body copy, unlike BaseHTTPMiddleware)."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == _HEADER), b"").decode("latin-1")
        request_id = given if _VALID.fullmatch(given) else uuid.uuid4().hex
        token = _request_id.set(request_id)

        started = False
        # What the layers outside raised while we handed them a message. Starlette's body limit
        # is one: when a Content-Length over the limit meets the start of a response, it sends
        # the 413 itself and raises to unwind the app. That is an answer given, not an error.
        outside: BaseException | None = None

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal started, outside
            if message["type"] == "http.response.start":
                started = True
                _count(scope, int(message["status"]))
                message["headers"] = [*message.get("headers", []), (_HEADER, request_id.encode())]
            try:
                await send(message)
            except BaseException as exc:
                outside = exc
                raise

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if outside is not None and _raised_by(exc, outside):
                raise  # theirs to handle, and to log if it is an error
            # An error no handler answered: logged and answered here, while the id is set, so
            # the 500, its traceback and its access line all carry it (Starlette's own error
            # middleware, outside this one, would answer without it).
            log.exception("unhandled error; answered 500")
            if started:
                raise  # the response is under way: only the server can end it
            await send_with_id(
                {"type": "http.response.start", "status": 500, "headers": [(b"content-type", b"application/json")]}
            )
            await send_with_id({"type": "http.response.body", "body": b'{"detail":"internal server error"}'})
        finally:
            _request_id.reset(token)


def _raised_by(exc: BaseException, origin: BaseException) -> bool:
    """Whether ``exc`` is ``origin``, or a group (an app's task group) holding only it."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_raised_by(inner, origin) for inner in exc.exceptions)
    return exc is origin


def _count(scope: dict[str, Any], status: int) -> None:
    """``ecomind_http_responses_total``, once the app has started (its counters live on its settings)."""
    from app.telemetry import HTTP_RESPONSES

    app = scope.get("app")
    services = getattr(getattr(app, "state", None), "services", None)
    if services is not None and 100 <= status < 600:
        services.settings.stats.inc(HTTP_RESPONSES, f"{status // 100}xx")


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        record.__dict__.pop("color_message", None)  # uvicorn's copy of the message with terminal colours
        return True


def use_json_logs(level: int | None = None) -> Callable[[], None]:
    """Send the root's and uvicorn's log lines to stderr as JSON; returns what undoes it."""
    from pythonjsonlogger.json import JsonFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )
    )
    handler.addFilter(_RequestIdFilter())
    saved: list[tuple[logging.Logger, list[logging.Handler]]] = []
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, list(logger.handlers)))
        logger.handlers = [handler]
    if level is not None:
        logging.getLogger().setLevel(level)

    def undo() -> None:
        for logger, handlers in saved:
            logger.handlers = handlers

    return undo
