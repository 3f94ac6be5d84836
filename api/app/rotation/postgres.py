"""PostgreSQL password rotation. Lambda entry point: ``app.rotation.postgres.handler``.

The secret has the RDS shape ``{engine, host, port, dbname, username, password}``
(plus ``connection_string``, rewritten from the fields every time so it never
disagrees). Two strategies, chosen by the secret:

* **single-user** (no ``masterarn``): ``ALTER ROLE <user> PASSWORD`` as the user
  itself. Between ``setSecret`` and ``finishSecret`` only ``AWSPENDING`` logs in;
  the API's connection hook tries it (app/db.py).
* **alternating users** (``masterarn`` names a secret holding an administrator's
  credentials): each rotation re-passwords the *other* of ``<user>`` and
  ``<user>_clone``, so ``AWSCURRENT`` and ``AWSPREVIOUS`` both log in at every
  moment. Both users are made members of a shared ``NOLOGIN`` role ``<user>_owner``
  and run every session as it (``ALTER ROLE ... SET role``), so whatever either
  creates belongs to the shared role and stays usable by the other.

SSL follows the environment's policy (``ENVIRONMENT`` of the function).
"""

from __future__ import annotations

import json
import os
from typing import Any

import psycopg
from psycopg import sql

from ..secrets.aws import secretsmanager_client
from ..secrets.dburl import build_url, set_query
from ..secrets.policy import ENVIRONMENTS, Environment, database_ssl
from .protocol import RotationError, Rotator

__all__ = ["PostgresRotator", "handler"]

CLONE_SUFFIX = "_clone"
OWNER_SUFFIX = "_owner"
MAX_IDENTIFIER = 63  # PostgreSQL truncates longer names (NAMEDATALEN - 1)


def _environment() -> Environment:
    name = os.environ.get("ENVIRONMENT", "production")
    return name if name in ENVIRONMENTS else "production"  # type: ignore[return-value]


class PostgresRotator(Rotator):
    def __init__(self, client: Any, environment: Environment | None = None, connect_timeout: int = 5) -> None:
        super().__init__(client)
        self.environment = environment or _environment()
        self.connect_timeout = connect_timeout

    # -- secrets -----------------------------------------------------------------------

    def _load(self, arn: str, *, stage: str = "AWSCURRENT", token: str | None = None) -> dict[str, Any]:
        data = json.loads(self.read(arn, stage=stage, token=token))
        missing = [k for k in ("host", "username", "password") if not data.get(k)]
        if missing or not (data.get("dbname") or data.get("database")):
            raise RotationError(f"{arn}: the secret lacks {', '.join(missing) or 'dbname'} (RDS rotation shape needed)")
        return dict(data)

    @staticmethod
    def base_user(username: str) -> str:
        return username[: -len(CLONE_SUFFIX)] if username.endswith(CLONE_SUFFIX) else username

    def _url(self, data: dict[str, Any]) -> str:
        url = build_url(
            username=str(data["username"]),
            password=str(data["password"]),
            host=str(data["host"]),
            port=str(data.get("port") or 5432),
            dbname=str(data.get("dbname") or data.get("database")),
        )
        url, finding = database_ssl(self.environment, url)
        if finding is not None:
            raise RotationError(f"database SSL: {finding.message}")
        return url

    def _connect(self, data: dict[str, Any]) -> psycopg.Connection[Any] | None:
        """A connection with these credentials, or None when the password is refused."""
        url = set_query(self._url(data), connect_timeout=str(self.connect_timeout))
        try:
            return psycopg.connect(url, autocommit=True)
        except psycopg.OperationalError as exc:
            text = str(exc)
            if "password authentication failed" in text or exc.sqlstate in ("28P01", "28000"):
                return None
            first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
            raise RotationError(
                f"cannot connect to the database at {data['host']}:{data.get('port', 5432)}: {first}"
            ) from None

    # -- steps ---------------------------------------------------------------------------

    def create(self, arn: str, token: str) -> None:
        current = self._load(arn)
        if self.pending_exists(arn, token):
            return
        new = dict(current)
        if current.get("masterarn"):
            base = self.base_user(str(current["username"]))
            clone = base + CLONE_SUFFIX
            if len(clone) > MAX_IDENTIFIER or len(base + OWNER_SUFFIX) > MAX_IDENTIFIER:
                raise RotationError(
                    f"{arn}: user name too long for alternating users ({base!r} + suffix > {MAX_IDENTIFIER} chars)"
                )
            new["username"] = base if current["username"] == clone else clone
        new["password"] = self.random_password()
        new["connection_string"] = self._url(new)
        self.put_pending(arn, token, json.dumps(new))

    def set(self, arn: str, token: str) -> None:
        pending = self._load(arn, stage="AWSPENDING", token=token)
        already = self._connect(pending)
        if already is not None:
            already.close()
            return
        current = self._load(arn)
        if current.get("masterarn"):
            self._set_alternating(arn, current, pending)
        else:
            self._set_single(arn, current, pending)

    def _set_single(self, arn: str, current: dict[str, Any], pending: dict[str, Any]) -> None:
        conn = self._connect(current)
        if conn is None:
            try:
                previous = self._load(arn, stage="AWSPREVIOUS")
            except self.client.exceptions.ResourceNotFoundException:
                previous = None
            conn = self._connect(previous) if previous else None
        if conn is None:
            raise RotationError(f"{arn}: neither AWSCURRENT nor AWSPREVIOUS logs in; cannot set the new password")
        with conn:
            conn.execute(
                sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
                    sql.Identifier(str(pending["username"])), sql.Literal(str(pending["password"]))
                )
            )

    def _set_alternating(self, arn: str, current: dict[str, Any], pending: dict[str, Any]) -> None:
        master_arn = str(current["masterarn"])
        master = self._load(master_arn)
        master.setdefault("dbname", current.get("dbname") or current.get("database"))
        master.setdefault("host", current["host"])
        master.setdefault("port", current.get("port"))
        conn = self._connect(master)
        if conn is None:
            raise RotationError(f"{arn}: the master secret {master_arn} does not log in")
        base = self.base_user(str(current["username"]))
        owner = base + OWNER_SUFFIX
        user = str(pending["username"])
        ident = sql.Identifier
        with conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(
                sql.SQL(verb + " ROLE {} WITH LOGIN PASSWORD {}").format(
                    ident(user), sql.Literal(str(pending["password"]))
                )
            )
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (owner,)).fetchone():
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(ident(owner)))
            dbname = str(current.get("dbname") or current.get("database"))
            for member in (base, base + CLONE_SUFFIX):
                if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (member,)).fetchone():
                    conn.execute(sql.SQL("GRANT {} TO {}").format(ident(owner), ident(member)))
                    conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(ident(dbname), ident(member)))
                    conn.execute(sql.SQL("ALTER ROLE {} SET role = {}").format(ident(member), sql.Literal(owner)))
        # Objects made before the shared role existed (first rotation) move to it.
        db_conn = self._connect({**master, "dbname": current.get("dbname") or current.get("database")})
        if db_conn is None:
            raise RotationError(f"{arn}: the master secret {master_arn} does not log in to the database")
        with db_conn:
            db_conn.execute(sql.SQL("GRANT ALL ON SCHEMA public TO {}").format(ident(owner)))
            db_conn.execute(sql.SQL("REASSIGN OWNED BY {} TO {}").format(ident(base), ident(owner)))

    def test(self, arn: str, token: str) -> None:
        pending = self._load(arn, stage="AWSPENDING", token=token)
        conn = self._connect(pending)
        if conn is None:
            raise RotationError(f"{arn}: the AWSPENDING credentials do not log in")
        with conn:
            conn.execute("SELECT 1")


def handler(event: dict[str, Any], context: Any = None) -> None:
    PostgresRotator(secretsmanager_client()).run(event)
