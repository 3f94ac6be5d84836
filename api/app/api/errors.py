"""Every answer a route can give, declared once, and the handlers that make them.

The OpenAPI document lists, per route, each status the route can return (the fuzz
run in CI checks that no undocumented status appears). Failures of PostgreSQL and
of the password-hashing queue become 503 with ``Retry-After`` on every route, never
a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException

from app.auth.hashing import HashingBusy
from app.data.engine import DatabaseConnectError
from app.telemetry import DB_POOL_EXHAUSTED, DB_UNAVAILABLE

__all__ = ["install_handlers", "responses"]

log = logging.getLogger("app.api.errors")

# Retry-After of an overloaded answer: the connections it waited for come free within moments.
OVERLOAD_RETRY_AFTER = 1


class ErrorOut(BaseModel):
    detail: str


_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}}
_DESCRIPTIONS = {
    401: "Authentication failed: no token, or a token that is invalid, expired, revoked, "
    "or whose user was deleted or disabled.",
    403: "The caller's role does not allow this.",
    409: "A user with this email already exists in this organisation.",
    413: "The request body is larger than ECOMIND_MAX_BODY_BYTES (default 1 MiB).",
    429: "Too many failed logins for this address or account, or too many logins of this account being "
    "checked at once; retry after Retry-After seconds.",
    503: "PostgreSQL is unavailable, or the API is overloaded (every database connection busy, or the "
    "password-hashing queue full); retry after Retry-After seconds.",
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the given status codes."""
    declared: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        entry: dict[str, Any] = {"model": ErrorOut, "description": _DESCRIPTIONS[code]}
        if code in (429, 503):
            entry["headers"] = _RETRY_AFTER
        if code == 413:
            # Starlette's limiter answers in plain text when it stops the body itself.
            entry["content"] = {"text/plain": {"schema": {"type": "string"}}}
        declared[code] = entry
    return declared


_UNREADABLE = {
    UnicodeDecodeError: "the body is not valid UTF-8",
    RecursionError: "the body nests arrays or objects too deeply",
    # Python's JSON parser refuses to read an integer of more than 4300 digits (a guard against
    # quadratic conversion); JSONDecodeError, the other ValueError it raises, is FastAPI's 422.
    ValueError: "the body holds an integer with too many digits to read",
}


def install_handlers(app: FastAPI, retry_after: int) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI echoes the rejected input by default: for a login that is a password.
        errors = [{"loc": e.get("loc"), "msg": e.get("msg"), "type": e.get("type")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        # FastAPI answers 400 when a JSON body is not UTF-8, nests deeper than Python's parser
        # recurses or holds an integer too long for it, but 422 when it is not JSON; all are a
        # body we cannot read, so all are 422 here, like NUL and lone surrogates.
        unreadable = _UNREADABLE.get(type(exc.__cause__)) if exc.status_code == 400 else None
        if unreadable is not None:
            error = {"loc": ["body"], "msg": unreadable, "type": "json_invalid"}
            return JSONResponse({"detail": [error]}, status_code=422)
        return await http_exception_handler(request, exc)

    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # The type only: a driver's message names the host and port.
        # A connect error's message says why and holds no secret (every password refused, say).
        why = str(exc) if isinstance(exc, DatabaseConnectError) else type(exc).__name__
        log.warning("%s %s: database unavailable (%s)", request.method, request.url.path, why)
        services = getattr(request.app.state, "services", None)
        if services is not None:
            services.settings.stats.inc(DB_UNAVAILABLE)
        return JSONResponse(
            {"detail": "the database is unavailable; try again shortly"},
            status_code=503,
            headers={"Retry-After": str(retry_after)},
        )

    for kind in (sa_exc.OperationalError, sa_exc.InterfaceError, DatabaseConnectError):
        app.add_exception_handler(kind, database_unavailable)

    @app.exception_handler(sa_exc.TimeoutError)
    async def overloaded(request: Request, exc: sa_exc.TimeoutError) -> JSONResponse:
        # The pool's wait ran out (ECOMIND_DB_POOL_TIMEOUT): every connection was busy with other
        # requests. PostgreSQL answered them; blaming it would page for an outage there is not.
        log.warning("%s %s: overloaded (no pooled database connection came free)", request.method, request.url.path)
        services = getattr(request.app.state, "services", None)
        if services is not None:
            services.settings.stats.inc(DB_POOL_EXHAUSTED)
        return JSONResponse(
            {"detail": "the API is overloaded: every database connection is busy; try again shortly"},
            status_code=503,
            headers={"Retry-After": str(OVERLOAD_RETRY_AFTER)},
        )

    @app.exception_handler(HashingBusy)
    async def hashing_busy(request: Request, exc: HashingBusy) -> JSONResponse:
        log.warning("password hashing queue full: %s %s refused", request.method, request.url.path)
        return JSONResponse(
            {"detail": "too many password checks in progress; try again shortly"},
            status_code=503,
            headers={"Retry-After": "1"},
        )
