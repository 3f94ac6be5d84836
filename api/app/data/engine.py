"""The database engine: every new connection takes its credentials from the secret store.

The engine's URL holds no password. SQLAlchemy's ``do_connect`` hook builds the
connection arguments each time the pool opens a connection: first the credentials
that last worked, then ``settings.secret("DATABASE_URL").get()`` (cached, no network).
So a rotated password is used without a restart, and connections already open keep
working through a rotation.

When PostgreSQL refuses the password (:func:`app.data.failures.classify` says ``auth``), the hook:

1. refreshes ``AWSCURRENT`` and tries again (the secret rotated since we cached it);
2. tries ``AWSPENDING`` (single-user rotation sets the new password in the database
   before it promotes the secret version);
3. does both once more (a rotation may finish between the two reads);
4. fails with :class:`DatabaseAuthError`.

A database that stops answering must not hold a request (and its thread) for long:
:class:`Timeouts` bounds the connection (libpq's ``connect_timeout``), a dead peer
(TCP keepalives and ``tcp_user_timeout``), a query (the server's ``statement_timeout``)
and, for a server that accepts bytes but never answers (a frozen process),
every wait for an answer on an open connection (:class:`_BoundedConnection`); the pool's
check of an idle connection (pre-ping) waits no longer than a new connection would, so a
frozen server holds a request no longer than two connect timeouts, or the answer bound of a
statement already sent. The engine's pool gives up after ``pool_timeout``. Each failure is an ``OperationalError``,
which the API answers with 503.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg.abc import PQGen
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.pool import ConnectionPoolEntry

from app.data.failures import DbFailure, classify
from app.secrets.errors import ResolutionError
from app.secrets.store import ResolvedSecret
from app.settings.loading import Settings
from app.telemetry import DB_RECOVERIES, DB_REFUSALS

__all__ = ["DatabaseAuthError", "DatabaseConnectError", "Timeouts", "connect_args", "make_engine", "sqlalchemy_url"]

log = logging.getLogger("app.data.engine")
RV = TypeVar("RV")
# libpq's keepalives: a peer silent this long is probed, and dropped after the probes fail.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}
# How much longer than statement_timeout the client waits for an answer: the server's own
# cancellation, and its error, must arrive first.
ANSWER_MARGIN_SECONDS = 5.0


@dataclass(frozen=True)
class Timeouts:
    """How long a database may keep us waiting (seconds)."""

    connect: int = 5  # libpq connect_timeout (its minimum is 2)
    statement: float | None = None  # the server's statement_timeout; None: the server's setting
    pool: float = 10.0  # waiting for a pooled connection (SQLAlchemy's pool_timeout)

    @property
    def answer(self) -> float | None:
        """The longest wait for an answer on an open connection; None without a statement timeout."""
        return None if self.statement is None else self.statement + ANSWER_MARGIN_SECONDS

    @property
    def ping(self) -> float:
        """The longest wait for the pool's check of an idle connection (its pre-ping, ``;``).

        A live server answers it at once, and a frozen one never: waited as long as a
        statement, the check and the new connection after it held a request for the answer
        bound plus the connect timeout (25 s with the defaults), past the bound we promise.
        A check waits as long as a new connection may, so a frozen server costs a request
        two connect timeouts at most."""
        return float(self.connect)

    def libpq(self, options: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {"connect_timeout": self.connect, **KEEPALIVES}
        # Unacknowledged bytes on a dead link: give up at the same time as a silent peer.
        params["tcp_user_timeout"] = 25_000
        if self.statement is not None:
            limit = f"-c statement_timeout={int(self.statement * 1000)}"
            params["options"] = f"{options} {limit}" if options else limit
        return params


class _BoundedConnection(psycopg.Connection[Any]):
    """psycopg's connection whose every wait for the server ends after ``answer`` seconds.

    A frozen server (SIGSTOP, a hung host whose kernel still acknowledges) never answers and
    never trips TCP's timers; past the deadline the connection is closed (half a conversation
    leaves it useless) and the wait fails like a lost connection, which SQLAlchemy discards.
    """

    answer: float | None = None

    def wait(self, gen: PQGen[RV], interval: float = 0.1, timeout: float | None = None) -> RV:
        limit = timeout if timeout is not None else self.answer
        started = time.monotonic()
        try:
            return super().wait(gen, interval=interval, timeout=limit)
        except psycopg.OperationalError:
            if limit is None or timeout is not None or time.monotonic() - started < limit:
                raise
            self.pgconn.finish()
            raise psycopg.OperationalError(f"the database did not answer within {limit:g} s") from None


class DatabaseConnectError(RuntimeError):
    """The database could not be reached or refused the connection (no secret inside).

    ``host`` is the host tried, for a fix that depends on where it is (this machine or not).
    """

    def __init__(self, message: str, failure: DbFailure | None = None, host: str | None = None, fix: str = "") -> None:
        super().__init__(f"{message}; fix: {fix}" if fix else message)
        self.reason = message  # without the fix: a caller that knows a better one says it instead
        self.failure = failure
        self.host = host


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

    def __init__(self, settings: Settings, timeouts: Timeouts) -> None:
        self.settings = settings
        self.timeouts = timeouts
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
        params = dict(cparams)
        # The URL's own values (?connect_timeout=...) win; options are combined.
        limits = self.timeouts.libpq(params.get("options"))
        return list(cargs), {**limits, **{k: v for k, v in params.items() if k != "options"}}

    def _try(self, dialect: Dialect, url: str) -> Any:
        cargs, cparams = self._params(dialect, url)
        connection = _BoundedConnection.connect(*cargs, **cparams)
        connection.answer = self.timeouts.answer
        return connection

    def _connect_or_none(self, dialect: Dialect, url: str) -> Any:
        """A connection, or None when the password is refused; other failures raise."""
        try:
            return self._try(dialect, url)
        except psycopg.OperationalError as exc:
            failure = classify(exc)
            if failure.kind != "auth":
                raise DatabaseConnectError(
                    f"cannot connect to the database: {_describe(failure)}", failure, sqlalchemy_url(url).host
                ) from None
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
        # Said once, by whoever catches it: the API's start (one line) or a request's 503 log line.
        raise DatabaseAuthError(
            f"the database refused every password we hold for DATABASE_URL (from {source}): {refusal}",
            self._last_refusal,
            fix="check the secret's AWSCURRENT/AWSPENDING versions against the database role "
            "(`ecomind doctor`), or finish the rotation (`ecomind secrets rotate`)",
        ) from None


# Connections a pool keeps open while idle; the rest of its connections close when given back.
IDLE_CONNECTIONS = 10


def make_engine(
    settings: Settings, timeouts: Timeouts | None = None, connections: int = 2 * IDLE_CONNECTIONS, **kwargs: Any
) -> Engine:
    """An engine whose URL carries no password; credentials come from the store per connection.

    ``timeouts`` default: a connect timeout, keepalives, no statement timeout (migrations may
    take long); the API passes its own (``ECOMIND_DB_*``). ``connections``: the most the pool
    opens at once; the API gives one per thread that may use one (``Tuning.db_pool_connections``)."""
    limits = timeouts or Timeouts()
    url = sqlalchemy_url(settings.secret("DATABASE_URL").get().value.get_secret_value()).set(password=None)
    # hide_parameters: a failed statement's parameters (emails, ids) stay out of its message,
    # and so out of tracebacks and logs.
    options: dict[str, Any] = {"pool_pre_ping": True, "hide_parameters": True}
    if "poolclass" not in kwargs:
        idle = min(IDLE_CONNECTIONS, connections)
        options.update(pool_size=idle, max_overflow=connections - idle, pool_timeout=limits.pool)
    options.update(kwargs)
    engine = create_engine(url, **options)
    event.listen(engine, "do_connect", RotatingCredentials(settings, limits))
    # A connection's first wait after it comes back to the pool is the next checkout's
    # pre-ping (its reset, a rollback, runs before "checkin"); the checkout event comes after
    # the ping, and gives the connection back its statement bound.
    event.listen(engine, "checkin", lambda dbapi, record: _bound(dbapi, limits.ping))
    event.listen(engine, "checkout", lambda dbapi, record, proxy: _bound(dbapi, limits.answer))
    return engine


def _bound(dbapi_connection: Any, answer: float | None) -> None:
    if isinstance(dbapi_connection, _BoundedConnection):
        dbapi_connection.answer = answer
