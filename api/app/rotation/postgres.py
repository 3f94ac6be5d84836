"""PostgreSQL password rotation. Lambda entry point: ``app.rotation.postgres.handler``.

The secret has the RDS shape ``{engine, host, port, dbname, username, password}``
(a legacy ``connection_string``, if present, is rewritten from the fields every
time so it never disagrees). Two strategies, chosen by the secret:

* **single-user** (no ``masterarn``): ``ALTER ROLE <user> PASSWORD`` as the user
  itself. Between ``setSecret`` and ``finishSecret`` only ``AWSPENDING`` logs in;
  the API's connection hook tries it (app/data/engine.py).
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
from collections.abc import Callable
from typing import Any, ClassVar

import psycopg
from psycopg import sql

from app.data.failures import classify
from app.data.roles import role_exists, set_role_password
from app.rotation.emf import handle
from app.rotation.protocol import RotationError, Rotator
from app.secrets import redact
from app.secrets.environment import POSTGRES_PORT, EnvironmentModel
from app.secrets.policy import database_ssl
from app.secrets.urls import rds_fields, set_query, url_from_fields

__all__ = ["MASTER_URL", "PostgresRotator", "handler"]

CLONE_SUFFIX = "_clone"
# For a local run (ecomind secrets rotate --local) when neither stored password logs in: the
# database's master user, from this variable unless the caller asks elsewhere (a file, a prompt).
MASTER_URL = "ECOMIND_MASTER_URL"
OWNER_SUFFIX = "_owner"
MAX_IDENTIFIER = 63  # PostgreSQL truncates longer names (NAMEDATALEN - 1)


class PostgresRotator(Rotator):
    secret_key: ClassVar[str] = "database"

    def __init__(
        self,
        client: Any,
        environment: EnvironmentModel | None = None,
        connect_timeout: int = 5,
        master_url: Callable[[], str | None] | None = None,
    ) -> None:
        super().__init__(client, environment)
        self.connect_timeout = connect_timeout
        # Asked only when neither stored password logs in (a prompt then asks only when needed).
        self.master_url = master_url or (lambda: os.environ.get(MASTER_URL))

    # -- secrets -----------------------------------------------------------------------

    def _load(self, arn: str, *, stage: str = "AWSCURRENT", token: str | None = None) -> dict[str, Any]:
        data = json.loads(self.read(arn, stage=stage, token=token))
        if rds_fields(data) is None:
            missing = [k for k in ("host", "username", "password") if not data.get(k)]
            raise RotationError(f"{arn}: the secret lacks {', '.join(missing) or 'dbname'} (RDS rotation shape needed)")
        return dict(data)

    def stale(self, arn: str, token: str) -> bool:
        if super().stale(arn, token):
            return True
        current = self._load(arn)
        try:
            pending = self._load(arn, stage="AWSPENDING", token=token)
        except (self.client.exceptions.ResourceNotFoundException, RotationError):
            return True
        same = ("engine", "host", "port", "dbname", "database", "masterarn")
        if any(str(current.get(k)) != str(pending.get(k)) for k in same):
            return True
        return self.base_user(str(current["username"])) != self.base_user(str(pending["username"]))

    @staticmethod
    def base_user(username: str) -> str:
        return username[: -len(CLONE_SUFFIX)] if username.endswith(CLONE_SUFFIX) else username

    def _url(self, data: dict[str, Any]) -> str:
        fields = rds_fields(data)
        assert fields is not None  # _load checked the shape
        url, finding = database_ssl(self.model, url_from_fields(fields))
        if finding is not None:
            raise RotationError(f"database SSL: {finding.message}")
        return url

    def _connect(self, data: dict[str, Any]) -> psycopg.Connection[Any] | None:
        """A connection with these credentials, or None when the password is refused."""
        url = set_query(self._url(data), connect_timeout=str(self.connect_timeout))
        try:
            return psycopg.connect(url, autocommit=True)
        except psycopg.OperationalError as exc:
            failure = classify(exc)
            if failure.kind == "auth":
                return None
            raise RotationError(
                f"cannot connect to the database at {data['host']}:{data.get('port', POSTGRES_PORT)}: {failure.summary}"
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
        new["password"] = self.random_password(self.model.secret(self.secret_key).generation)
        if "connection_string" in new:
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
            # The previous password, at today's address: the host may have moved since.
            conn = self._connect({**current, "password": previous["password"]}) if previous else None
        master = self.master_url() if conn is None else None
        if conn is None and master:
            # Neither password works any more (changed out of band): the database's master
            # user, given for this one run, sets the new one. Registered first: libpq's error
            # may quote a piece of its password (a raw '@' in it), and classify scrubs those.
            redact.register_input(master)
            try:
                conn = psycopg.connect(master, autocommit=True, connect_timeout=self.connect_timeout)
            except psycopg.Error as exc:
                raise RotationError(f"{arn}: the master user's URL does not log in: {classify(exc).summary}") from None
        if conn is None:
            raise RotationError(
                f"{arn}: neither AWSCURRENT nor AWSPREVIOUS logs in (the role's password was changed elsewhere); "
                "the database's master user must set the new one for this run"
            )
        with conn:
            set_role_password(conn, str(pending["username"]), str(pending["password"]))

    def _set_alternating(self, arn: str, current: dict[str, Any], pending: dict[str, Any]) -> None:
        master_arn = str(current["masterarn"])
        master = self._load(master_arn)
        dbname = str(rds_fields(current)["dbname"])  # type: ignore[index]  # _load checked the shape
        master.setdefault("dbname", dbname)
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
            set_role_password(conn, user, str(pending["password"]), create=True)
            if not role_exists(conn, owner):
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(ident(owner)))
            for member in (base, base + CLONE_SUFFIX):
                if role_exists(conn, member):
                    conn.execute(sql.SQL("GRANT {} TO {}").format(ident(owner), ident(member)))
                    conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(ident(dbname), ident(member)))
                    conn.execute(sql.SQL("ALTER ROLE {} SET role = {}").format(ident(member), sql.Literal(owner)))
        # Objects made before the shared role existed (first rotation) move to it.
        db_conn = self._connect({**master, "dbname": dbname})
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
    handle(PostgresRotator, event)
