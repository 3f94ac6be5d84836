"""The one reading of a failed PostgreSQL connection, shared by the API, the rotation handlers and the tools.

:func:`classify` says what failed: refused password, no such database, SSL refused, DNS,
unreachable. ``app.data.engine`` uses it to decide whether to try other credentials, the
rotation handlers to decide whether a password works, ``ecomind doctor`` to name the fix.

libpq reports a failed start-up (a refused password included) as a connection
failure whose SQLSTATE psycopg leaves empty, so the server's message is read as
well as the SQLSTATE; tests check this against a real server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from app.secrets import redact

__all__ = ["DbFailure", "classify"]

FailureKind = Literal["auth", "no_database", "ssl", "dns", "unreachable", "other"]

_AUTH_SQLSTATES = ("28P01", "28000")
_MARKERS: tuple[tuple[FailureKind, tuple[str, ...]], ...] = (
    ("auth", ("password authentication failed", "no password supplied")),
    ("no_database", ("does not exist",)),
    ("ssl", ("does not support ssl", "ssl connection", "ssl error", "certificate")),
    ("dns", ("could not translate host name", "name or service not known", "nodename nor servname")),
    (
        "unreachable",
        ("connection refused", "timeout expired", "timed out", "no route to host", "network is unreachable"),
    ),
)


@dataclass(frozen=True)
class DbFailure:
    """Why a connection failed. ``summary`` is the driver's first line, scrubbed of secrets."""

    kind: FailureKind
    summary: str


def classify(exc: BaseException) -> DbFailure:
    """Classify a psycopg (or SQLAlchemy-wrapped psycopg) connection error."""
    inner = getattr(exc, "orig", None) or exc
    text = str(inner).strip()
    first = text.splitlines()[0] if text else type(inner).__name__
    summary = redact.scrub(first)[:300]
    sqlstate = getattr(inner, "sqlstate", None)
    if sqlstate in _AUTH_SQLSTATES:
        return DbFailure("auth", summary)
    if sqlstate == "3D000":
        return DbFailure("no_database", summary)
    lowered = text.lower()
    if 'role "' in lowered and "does not exist" in lowered:
        return DbFailure("auth", summary)  # an unknown user is refused like a wrong password
    for kind, markers in _MARKERS:
        if any(marker in lowered for marker in markers):
            return DbFailure(kind, summary)
    return DbFailure("other", summary)
