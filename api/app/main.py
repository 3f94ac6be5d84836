"""The EcoMind API. ``app = create_app()`` serves ``uvicorn app.main:app``.

Importing this module builds the application object (the last line) and nothing it
serves with: settings, the engine and the Redis client are made in the lifespan, so
importing it touches no network and reads no secret. The
abuse limits (``ECOMIND_*``, see app/settings/knobs.py and docs/security.md) are read when
the app is created, since the request body limit is part of the ASGI stack.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import redis
from fastapi import FastAPI
from sqlalchemy import Engine, text
from sqlalchemy.orm import sessionmaker

from app.api.deps import Services
from app.api.errors import install_handlers, responses
from app.api.routes import auth, events, health, users
from app.api.serving import quiet_accept_errors
from app.auth.hashing import PasswordHashing
from app.auth.limits import LoginThrottle
from app.auth.revocations import Revocations
from app.auth.tokens import TokenService
from app.auth.users import ActiveUsers
from app.cli.output import ExitCode, exit_code
from app.data.engine import DatabaseAuthError, DatabaseConnectError, Timeouts, make_engine
from app.observe.logs import RequestIdMiddleware, use_json_logs
from app.observe.metrics import EmfReporter, MetricsServer, registry
from app.secrets import redact
from app.secrets.errors import SettingsError
from app.settings.knobs import KNOBS, PROBE_THREADS, Tuning, TuningError
from app.settings.loading import Settings, load_settings

__all__ = ["StartupError", "app", "create_app", "served_tuning"]

log = logging.getLogger("app.main")


class StartupError(RuntimeError):
    """The API cannot start; the message says why and the fix, and holds no secret.

    It is one line in the log (:class:`_OneLineStartup`), not a traceback: nothing is wrong
    with the code. ``exit_code`` is the code of its kind (docs/troubleshooting.md), which
    ``ecomind dev`` exits with (it reads ``app.state.startup_failure``); uvicorn itself exits
    3 on any failed start."""

    def __init__(self, message: str, exit_code: int = ExitCode.CONFIG) -> None:
        super().__init__(message)
        self.exit_code = int(exit_code)


class _OneLineStartup:
    """Pure ASGI: a :class:`StartupError` in the lifespan is logged as one line, and Starlette's
    traceback of it (the message of ``lifespan.startup.failed``, which uvicorn logs) is dropped.
    Any other error keeps its traceback: that one is a bug."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_one_line(message: dict[str, Any]) -> None:
            # Starlette sends the failure while it handles the error: that error is sys.exc_info()'s.
            failure = sys.exc_info()[1]
            if message["type"] == "lifespan.startup.failed" and isinstance(failure, StartupError):
                log.critical("the API cannot start: %s", failure)
                scope["app"].state.startup_failure = failure
                message = {**message, "message": ""}
            await send(message)

        await self.app(scope, receive, send_one_line)


def _default_loader() -> Settings:
    return load_settings(env_file=Path(".env"))


def create_app(
    load: Callable[[], Settings] = _default_loader,
    engine_options: dict[str, Any] | None = None,
    tuning: Tuning | None = None,
    on_ready: Callable[[Settings], None] | None = None,
) -> FastAPI:
    """The application; ``engine_options`` go to SQLAlchemy (pool sizes, pool_recycle);
    ``tuning`` (default: from the ``ECOMIND_*`` environment) sets the abuse limits;
    ``on_ready`` runs when everything is built, before the first request is served."""
    limits = tuning or Tuning.from_env()
    app = FastAPI(
        title="EcoMind API",
        version="0.1.0",
        lifespan=_lifespan(load, engine_options, limits, on_ready),
        # Enforced while the body streams in (Content-Length or chunked): 413 before it is read whole.
        max_body_size=limits.max_body_bytes,
        responses=responses(413),
    )
    install_handlers(app, limits.unavailable_retry_after)
    for router in (health.router, auth.router, users.router, events.router):
        app.include_router(router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            users.publish_password_policy(FastAPI.openapi(app), limits)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(_OneLineStartup)
    return app


def _lifespan(
    load: Callable[[], Settings],
    engine_options: dict[str, Any] | None,
    limits: Tuning,
    on_ready: Callable[[Settings], None] | None,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """What the app builds when it starts (settings, metrics, engine, Redis, services) and
    releases when it stops, in reverse, on a failed start too."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redact.install()
        quiet_accept_errors(asyncio.get_running_loop())  # out of descriptors: a line a minute, not a flood
        # The sync routes' threads, and the pool sized from the same knob: a request thread
        # never waits for a database connection. /ready's checks have threads of their own.
        anyio.to_thread.current_default_thread_limiter().total_tokens = limits.request_threads
        app.state.probe_threads = anyio.CapacityLimiter(PROBE_THREADS)
        with ExitStack() as stack:  # what is built is released in reverse, on a failed start too
            if limits.log_format == "json":
                stack.callback(use_json_logs())
            settings = _settings(load, stack)
            stale_after = limits.stale_after(settings.secrets_cache_ttl)
            metrics_server = _metrics_server(settings, limits, stale_after)
            if metrics_server is not None:
                stack.callback(metrics_server.close)
            app.state.metrics_port = metrics_server.port if metrics_server else None
            engine = _engine(settings, limits, engine_options, stack)
            redis_url, redis_client = _redis(settings, stack)
            app.state.services = _services(app, settings, limits, stale_after, engine, redis_url, redis_client, stack)
            if on_ready is not None:
                on_ready(settings)
            yield

    return lifespan


def _settings(load: Callable[[], Settings], stack: ExitStack) -> Settings:
    """The settings, their warnings logged; invalid ones stop the start with every problem logged."""
    try:
        settings = load()
    except SettingsError as exc:
        log.error("%s", exc)  # every problem, each with its fix
        raise StartupError(
            "configuration invalid (the problems above, each with its fix)", exit_code(exc.error_kind)
        ) from None
    stack.callback(settings.close)
    for warning in settings.warnings:
        log.warning("%s", warning.render())
    return settings


def _engine(settings: Settings, limits: Tuning, engine_options: dict[str, Any] | None, stack: ExitStack) -> Engine:
    """The rotation-aware engine, checked with one query: no database stops the start, saying the fix."""
    timeouts = Timeouts(limits.db_connect_timeout, limits.db_statement_timeout or None, limits.db_pool_timeout)
    engine = make_engine(settings, timeouts, limits.db_pool_connections, **(engine_options or {}))
    stack.callback(engine.dispose)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DatabaseAuthError as exc:
        raise StartupError(_refused_password(settings, exc), ExitCode.DATABASE) from None
    except DatabaseConnectError as exc:
        message = str(exc)
        if "fix:" not in message:
            source = settings.origins["DATABASE_URL"].describe()
            message += (
                f"; fix: start PostgreSQL, or point DATABASE_URL (from {source}) at a running one "
                "(`ecomind doctor` checks it)"
            )
        raise StartupError(message, ExitCode.DATABASE) from None
    return engine


def _redis(settings: Settings, stack: ExitStack) -> tuple[str | None, redis.Redis | None]:
    """REDIS_URL and its client; without it, None twice and a warning of what holds per process."""
    redis_client: redis.Redis | None = None
    redis_url = (
        settings.secret("REDIS_URL").get().value.get_secret_value() if settings.has_secret("REDIS_URL") else None
    )
    if redis_url is not None:
        redis_client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        stack.callback(redis_client.close)
    else:
        log.warning("REDIS_URL unset: login limits hold per process; revocations are checked in PostgreSQL")
    return redis_url, redis_client


def _services(
    app: FastAPI,
    settings: Settings,
    limits: Tuning,
    stale_after: float,
    engine: Engine,
    redis_url: str | None,
    redis_client: redis.Redis | None,
    stack: ExitStack,
) -> Services:
    """What the routes use: sessions, hashing, tokens, revocations, login limits, live users (and EMF)."""
    sessions = sessionmaker(engine, expire_on_commit=False)
    hashing = PasswordHashing(limits.hash_workers, limits.hash_queue)
    stack.callback(hashing.close)
    if limits.emf_interval > 0:
        stack.callback(EmfReporter(settings, stale_after, limits.emf_interval).close)
    app.state.redis = redis_client
    revocations = Revocations(sessions, redis_client, limits.revocation_resync_seconds)
    if redis_url is not None:
        revocations.check_eviction(redis_url)
    return Services(
        settings=settings,
        sessions=sessions,
        tokens=TokenService(settings),
        revocations=revocations,
        tuning=limits,
        stale_after=stale_after,
        hashing=hashing,
        throttle=LoginThrottle(limits, redis_client),
        users=ActiveUsers(sessions, limits.user_cache_seconds),
    )


def _refused_password(settings: Settings, exc: DatabaseAuthError) -> str:
    """Every password held was refused: in staging and production, the doctor's fix (a rotation
    with the master user's help), for the secret DATABASE_URL reads."""
    if not settings.model.deployed:
        return str(exc)
    from sqlalchemy.engine import make_url

    from app.cli.fixes import password_reset_fix
    from app.secrets.environment import POSTGRES_PORT
    from app.secrets.refs import AwsRef, parse_reference

    origin = settings.origins["DATABASE_URL"]
    ref = parse_reference(origin.reference) if origin.reference else None
    secret = ref.secret_id if isinstance(ref, AwsRef) else settings.model.secret_name("database")
    region = (ref.region if isinstance(ref, AwsRef) else None) or settings.aws_region
    url = make_url(settings.secret("DATABASE_URL").get().value.get_secret_value())
    where = f"{url.host or 'HOST'}:{url.port or POSTGRES_PORT}"
    return f"{exc.reason}; fix: {password_reset_fix(settings.model, secret, region, where)}"


def _metrics_server(settings: Settings, limits: Tuning, stale_after: float) -> MetricsServer | None:
    """The metrics listener, on its own port; None when ECOMIND_METRICS=off."""
    if limits.metrics == "off":
        return None
    try:
        server = MetricsServer(
            registry(settings, stale_after),
            limits.metrics_host,
            limits.metrics_port,
            limits.metrics_timeout,
            limits.metrics_max_connections,
        )
    except OSError as exc:
        if isinstance(exc, socket.gaierror):  # the host is no name or address this machine resolves
            fix = f"set {KNOBS['metrics_host']} to an address of this machine (127.0.0.1, or 0.0.0.0: every one)"
        else:
            fix = f"set {KNOBS['metrics_port']} to a free port ({KNOBS['metrics_port']}=0: any)"
        raise StartupError(
            f"cannot serve metrics on {limits.metrics_host}:{limits.metrics_port} ({exc.strerror}); "
            f"fix: {fix}, or {KNOBS['metrics']}=off"
        ) from None
    log.info("metrics on http://%s:%d/metrics", server.host, server.port)
    return server


def served_tuning() -> Tuning:
    """The knobs of a served API (``app.asgi:app``, ``app.main:app``), read once at import.

    JSON logs start here when asked, so that uvicorn's own lines (the server started, the
    start failed) are JSON too. A knob that cannot be used is one line naming it and exit
    code 3 (the configuration is invalid), not a traceback of the import."""
    try:
        tuning = Tuning.from_env()
    except TuningError as exc:
        if os.environ.get(KNOBS["log_format"], "").strip() == "json":
            use_json_logs()
        logging.getLogger("app").critical("%s", exc)
        raise SystemExit(3) from None
    if tuning.log_format == "json":
        use_json_logs()
    from app.api.serving import bounds

    bounds()  # the open-files limit raised for the connection cap now, not at the first client
    return tuning


app = create_app(tuning=served_tuning())
