"""The database engine: every new connection takes its credentials from the secret store.

The engine's URL holds no password. SQLAlchemy's ``do_connect`` hook builds the
connection arguments each time the pool opens a connection: first the credentials
that last worked, then ``settings.secret("DATABASE_URL").get()`` (cached, no network).
So a rotated password is used without a restart, and connections already open keep
working through a rotation.

When PostgreSQL refuses the password (:func:`app.pg.classify` says ``auth``), the hook:

1. refreshes ``AWSCURRENT`` and tries again (the secret rotated since we cached it);
2. tries ``AWSPENDING`` (single-user rotation sets the new password in the database
   before it promotes the secret version);
3. does both once more (a rotation may finish between the two reads);
4. fails with :class:`DatabaseAuthError`.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.pool import ConnectionPoolEntry

from .pg import DbFailure, classify
from .secrets.errors import ResolutionError
from .secrets.store import ResolvedSecret
from .settings import Settings
from .telemetry import DB_RECOVERIES, DB_REFUSALS

__all__ = ["DatabaseConnectError", "connect_args", "make_engine", "sqlalchemy_url"]

log = logging.getLogger("app.db")


class DatabaseConnectError(RuntimeError):
    """The database could not be reached or refused the connection (no secret inside)."""

    def __init__(self, message: str, failure: DbFailure | None = None) -> None:
        super().__init__(message)
        self.failure = failure


class DatabaseAuthError(DatabaseConnectError):
    """Every credential we hold was refused."""


def sqlalchemy_url(url: str) -> URL:
    """A database URL for SQLAlchemy with the psycopg 3 driver."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+psycopg")


def connect_args(url: str) -> dict[str, Any]:
    """What ``psycopg.connect(**...)`` takes for ``url``: any scheme the settings accept
    (``postgres://``, ``postgresql+psycopg://``...) becomes a libpq URL, query kept."""
    libpq = sqlalchemy_url(url).set(drivername="postgresql")
    # render_as_string(hide_password=False): str(url) would mask the password as ***.
    return {"conninfo": libpq.render_as_string(hide_password=False)}


def _describe(failure: DbFailure) -> str:
    if failure.kind == "ssl":
        return "the database server refused SSL, which this environment requires (sslmode)"
    return failure.summary


class RotatingCredentials:
    """The ``do_connect`` hook; one per engine."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._db = settings.secret("DATABASE_URL")
        self._last_good: str | None = None
        self._last_refusal: DbFailure | None = None

    def _fetch(self, stage: str, region: str | None = None) -> ResolvedSecret:
        # Concurrent callers share one fetch (SecretStore.refresh); once a password
        # works it is tried first (_last_good), so a rotation costs a handful of
        # Secrets Manager calls, not one per new connection.
        return self._db.refresh(stage=None if stage == "AWSCURRENT" else stage, region=region)

    def _params(self, dialect: Dialect, url: str) -> tuple[list[Any], dict[str, Any]]:
        cargs, cparams = dialect.create_connect_args(sqlalchemy_url(url))
        return list(cargs), dict(cparams)

    def _try(self, dialect: Dialect, url: str) -> Any:
        cargs, cparams = self._params(dialect, url)
        return dialect.connect(*cargs, **cparams)

    def _connect_or_none(self, dialect: Dialect, url: str) -> Any:
        """A connection, or None when the password is refused; other failures raise."""
        try:
            return self._try(dialect, url)
        except psycopg.OperationalError as exc:
            failure = classify(exc)
            if failure.kind != "auth":
                raise DatabaseConnectError(f"cannot connect to the database: {_describe(failure)}", failure) from None
            self._last_refusal = failure
            return None

    def __call__(self, dialect: Dialect, conn_rec: ConnectionPoolEntry, cargs: Any, cparams: dict[str, Any]) -> Any:
        # The credentials that last worked go first: after a rotation they are the
        # new ones even while the cached AWSCURRENT is still the old version.
        current = self._db.get().value.get_secret_value()
        for url in dict.fromkeys(u for u in (self._last_good, current) if u):
            connection = self._connect_or_none(dialect, url)
            if connection is not None:
                self._last_good = url
                return connection
        self._last_good = None
        stats = self.settings.stats
        stats.inc(DB_REFUSALS)
        log.info("database refused the cached password; refreshing AWSCURRENT")
        stages = ["AWSCURRENT"]
        if self._db.is_reference:
            stages.append("AWSPENDING")
        attempts: list[tuple[str, str | None]] = [(stage, None) for stage in stages]
        regions = self._db.regions()
        if len(regions) > 1:
            # A replica can lag a rotation: ask the primary, then each replica, by name.
            attempts += [(stage, region) for region in regions for stage in stages]
        # Two rounds: a rotation may finish between our AWSCURRENT and AWSPENDING
        # reads (old AWSCURRENT read, then AWSPENDING already cleared); the second
        # round reads the promoted version.
        for _ in range(2):
            for stage, region in attempts:
                try:
                    url = self._fetch(stage, region).value.get_secret_value()
                except ResolutionError as exc:
                    log.info("no %s credentials to try in %s (%s)", stage, region or "the chain", type(exc).__name__)
                    continue
                connection = self._connect_or_none(dialect, url)
                if connection is not None:
                    log.info("database connection succeeded with the %s credentials", stage)
                    stats.inc(DB_RECOVERIES, stage)
                    self._last_good = url
                    return connection
        source = self.settings.origins["DATABASE_URL"].describe()
        refusal = _describe(self._last_refusal) if self._last_refusal else "password refused"
        log.error("the database refused every password held for DATABASE_URL (from %s)", source)
        raise DatabaseAuthError(
            f"the database refused every password we hold for DATABASE_URL (from {source}): {refusal}; "
            "fix: check the secret's AWSCURRENT/AWSPENDING versions against the database role "
            "(`ecomind doctor`), or finish the rotation (`ecomind secrets rotate`)",
            self._last_refusal,
        ) from None


def make_engine(settings: Settings, **kwargs: Any) -> Engine:
    """An engine whose URL carries no password; credentials come from the store per connection."""
    url = sqlalchemy_url(settings.secret("DATABASE_URL").get().value.get_secret_value()).set(password=None)
    options: dict[str, Any] = {"pool_pre_ping": True}
    if "poolclass" not in kwargs:
        options.update(pool_size=10, max_overflow=10)
    options.update(kwargs)
    engine = create_engine(url, **options)
    event.listen(engine, "do_connect", RotatingCredentials(settings))
    return engine
