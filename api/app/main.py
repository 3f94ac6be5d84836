"""The EcoMind API. ``app = create_app()`` serves ``uvicorn app.main:app``.

Nothing is built at import: settings, the engine and the Redis client are made in
the lifespan, so importing this module touches no network and reads no secret. The
abuse limits (``ECOMIND_*``, see app/tuning.py and docs/security.md) are read when
the app is created, since the request body limit is part of the ASGI stack.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import redis
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.orm import sessionmaker

from .accounts import ActiveUsers
from .api.deps import Services
from .api.errors import install_handlers, responses
from .api.routes import auth, events, health, users
from .db import DatabaseConnectError, Timeouts, make_engine
from .logs import RequestIdMiddleware, use_json_logs
from .metrics import EmfReporter, MetricsServer, registry
from .revocation import Revocations
from .secrets import redact
from .secrets.errors import SettingsError
from .security import PasswordHashing, TokenService
from .settings import Settings, load_settings
from .throttle import LoginThrottle
from .tuning import KNOBS, Tuning, TuningError

__all__ = ["StartupError", "app", "create_app", "served_tuning"]

log = logging.getLogger("app.main")


class StartupError(RuntimeError):
    """The API cannot start; the message says why and holds no secret."""


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

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redact.install()
        with ExitStack() as stack:  # what is built is released in reverse, on a failed start too
            if limits.log_format == "json":
                stack.callback(use_json_logs())
            try:
                settings = load()
            except SettingsError as exc:
                log.error("%s", exc)
                raise StartupError("configuration invalid (see the problems above)") from None
            stack.callback(settings.close)
            for warning in settings.warnings:
                log.warning("%s", warning.render())
            stale_after = limits.stale_after(settings.secrets_cache_ttl)
            metrics_server = _metrics_server(settings, limits, stale_after)
            if metrics_server is not None:
                stack.callback(metrics_server.close)
            app.state.metrics_port = metrics_server.port if metrics_server else None
            timeouts = Timeouts(limits.db_connect_timeout, limits.db_statement_timeout or None, limits.db_pool_timeout)
            engine = make_engine(settings, timeouts, **(engine_options or {}))
            stack.callback(engine.dispose)
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
            except DatabaseConnectError as exc:
                log.error("%s", exc)
                raise StartupError(str(exc)) from None
            redis_client: redis.Redis | None = None
            redis_url = (
                settings.secret("REDIS_URL").get().value.get_secret_value()
                if settings.has_secret("REDIS_URL")
                else None
            )
            if redis_url is not None:
                redis_client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
                stack.callback(redis_client.close)
            else:
                log.warning("REDIS_URL unset: login limits hold per process; revocations are checked in PostgreSQL")
            sessions = sessionmaker(engine, expire_on_commit=False)
            hashing = PasswordHashing(limits.hash_workers, limits.hash_queue)
            stack.callback(hashing.close)
            if limits.emf_interval > 0:
                stack.callback(EmfReporter(settings, stale_after, limits.emf_interval).close)
            app.state.redis = redis_client
            app.state.services = Services(
                settings=settings,
                sessions=sessions,
                tokens=TokenService(settings),
                revocations=Revocations(sessions, redis_client, limits.revocation_resync_seconds),
                tuning=limits,
                stale_after=stale_after,
                hashing=hashing,
                throttle=LoginThrottle(limits, redis_client),
                users=ActiveUsers(sessions, limits.user_cache_seconds),
            )
            if on_ready is not None:
                on_ready(settings)
            yield

    app = FastAPI(
        title="EcoMind API",
        version="0.1.0",
        lifespan=lifespan,
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
    return app


def _metrics_server(settings: Settings, limits: Tuning, stale_after: float) -> MetricsServer | None:
    """The metrics listener, on its own port; None when ECOMIND_METRICS=off."""
    if limits.metrics == "off":
        return None
    try:
        server = MetricsServer(registry(settings, stale_after), limits.metrics_host, limits.metrics_port)
    except OSError as exc:
        raise StartupError(
            f"cannot serve metrics on {limits.metrics_host}:{limits.metrics_port} ({exc.strerror}); "
            f"fix: set {KNOBS['metrics_port']} to a free port, or {KNOBS['metrics']}=off"
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
    from .serving import bounds

    bounds()  # the open-files limit raised for the connection cap now, not at the first client
    return tuning


app = create_app(tuning=served_tuning())
