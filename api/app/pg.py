"""PostgreSQL facts shared by the API, the rotation handlers and the tools.

* :func:`classify` is the one reading of a failed connection: refused password,
  no such database, SSL refused, DNS, unreachable. ``app.db`` uses it to decide
  whether to try other credentials, the rotation handlers to decide whether a
  password works, ``ecomind doctor`` to name the fix.
* :func:`set_role_password` and :func:`role_exists` are the one place where a
  role's password is written.

libpq reports a failed start-up (a refused password included) as a connection
failure whose SQLSTATE psycopg leaves empty, so the server's message is read as
well as the SQLSTATE; tests check this against a real server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from psycopg import sql

from .secrets import redact

__all__ = ["DbFailure", "classify", "role_exists", "set_role_password"]

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


def role_exists(conn: Any, name: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone() is not None


def set_role_password(conn: Any, user: str, password: str, *, create: bool = False) -> None:
    """Give ``user`` a new password.

    ``create=False``: ``ALTER ROLE ... PASSWORD``, which a role may run on itself
    (single-user rotation). ``create=True``: create the login role, or make an
    existing one a login role with this password (needs CREATEROLE).
    """
    if not create:
        verb, attributes = "ALTER", "PASSWORD"
    else:
        verb = "ALTER" if role_exists(conn, user) else "CREATE"
        attributes = "LOGIN PASSWORD"
    conn.execute(
        sql.SQL(f"{verb} ROLE {{}} WITH {attributes} {{}}").format(sql.Identifier(user), sql.Literal(password))
    )
