"""The EcoMind API. ``app = create_app()`` serves ``uvicorn app.main:app``.

Nothing is built at import: settings, the engine and the Redis client are made in
the lifespan, so importing this module touches no network and reads no secret. The
abuse limits (``ECOMIND_*``, see app/tuning.py and docs/security.md) are read when
the app is created, since the request body limit is part of the ASGI stack.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
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
from .db import DatabaseConnectError, make_engine
from .revocation import Revocations
from .secrets import redact
from .secrets.errors import SettingsError
from .security import PasswordHashing, TokenService
from .settings import Settings, load_settings
from .throttle import LoginThrottle
from .tuning import Tuning

__all__ = ["StartupError", "app", "create_app"]

log = logging.getLogger("app.main")


class StartupError(RuntimeError):
    """The API cannot start; the message says why and holds no secret."""


def _default_loader() -> Settings:
    return load_settings(env_file=Path(".env"))


def create_app(
    load: Callable[[], Settings] = _default_loader,
    engine_options: dict[str, Any] | None = None,
    tuning: Tuning | None = None,
) -> FastAPI:
    """The application; ``engine_options`` go to SQLAlchemy (pool sizes, pool_recycle);
    ``tuning`` (default: from the ``ECOMIND_*`` environment) sets the abuse limits."""
    limits = tuning or Tuning.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redact.install()
        try:
            settings = load()
        except SettingsError as exc:
            log.error("%s", exc)
            raise StartupError("configuration invalid (see the problems above)") from None
        for warning in settings.warnings:
            log.warning("%s", warning.render())
        engine = make_engine(settings, **(engine_options or {}))
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except DatabaseConnectError as exc:
            engine.dispose()
            settings.close()
            log.error("%s", exc)
            raise StartupError(str(exc)) from None
        redis_client: redis.Redis | None = None
        redis_url = (
            settings.secret("REDIS_URL").get().value.get_secret_value() if settings.has_secret("REDIS_URL") else None
        )
        if redis_url is not None:
            redis_client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        else:
            log.warning("REDIS_URL unset: login limits hold per process; revocations are checked in PostgreSQL")
        sessions = sessionmaker(engine, expire_on_commit=False)
        hashing = PasswordHashing(limits.hash_workers, limits.hash_queue)
        app.state.redis = redis_client
        app.state.services = Services(
            settings=settings,
            sessions=sessions,
            tokens=TokenService(settings),
            revocations=Revocations(sessions, redis_client, limits.revocation_resync_seconds),
            tuning=limits,
            hashing=hashing,
            throttle=LoginThrottle(limits, redis_url, redis_client),
            users=ActiveUsers(sessions, limits.user_cache_seconds),
        )
        try:
            yield
        finally:
            hashing.close()
            engine.dispose()
            if redis_client is not None:
                redis_client.close()
            settings.close()

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
    return app


app = create_app()
