"""The one place where a PostgreSQL role's password is written, and a role is looked up.

The local development servers, the rotation handlers and ``ecomind secrets rotate --local``
all set passwords through :func:`set_role_password`. ``ALTER ROLE`` takes no bind
parameters, so the password is quoted by psycopg as a literal (:class:`psycopg.sql.Literal`),
never formatted into the statement by hand.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

__all__ = ["role_exists", "set_role_password"]


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
