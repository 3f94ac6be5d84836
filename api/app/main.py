"""The EcoMind API. ``app = create_app()`` serves ``uvicorn app.main:app``.

Nothing is built at import: settings, the engine and the Redis client are made in
the lifespan, so importing this module touches no network and reads no secret.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.orm import sessionmaker

from .api.deps import Services
from .api.routes import auth, events, health, users
from .db import DatabaseConnectError, make_engine
from .revocation import MemoryRevocations, RedisRevocations, Revocations
from .secrets import redact
from .secrets.errors import SettingsError
from .security import TokenService
from .settings import Settings, load_settings

__all__ = ["StartupError", "app", "create_app"]

log = logging.getLogger("app.main")


class StartupError(RuntimeError):
    """The API cannot start; the message says why and holds no secret."""


def _default_loader() -> Settings:
    return load_settings(env_file=Path(".env"))


def create_app(load: Callable[[], Settings] = _default_loader, engine_options: dict[str, Any] | None = None) -> FastAPI:
    """The application; ``engine_options`` go to SQLAlchemy (pool sizes, pool_recycle)."""

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
        revocations: Revocations = MemoryRevocations()
        if settings.has_secret("REDIS_URL"):
            redis_client = redis.Redis.from_url(
                settings.secret("REDIS_URL").get().value.get_secret_value(), socket_timeout=2, socket_connect_timeout=2
            )
            revocations = RedisRevocations(redis_client)
        else:
            log.warning("REDIS_URL unset: logouts are remembered by this process only")
        app.state.redis = redis_client
        app.state.services = Services(
            settings=settings,
            sessions=sessionmaker(engine, expire_on_commit=False),
            tokens=TokenService(settings),
            revocations=revocations,
        )
        try:
            yield
        finally:
            engine.dispose()
            if redis_client is not None:
                redis_client.close()
            settings.close()

    app = FastAPI(title="EcoMind API", version="0.1.0", lifespan=lifespan)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI echoes the rejected input by default: for a login that is a password.
        errors = [{"loc": e.get("loc"), "msg": e.get("msg"), "type": e.get("type")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    for router in (health.router, auth.router, users.router, events.router):
        app.include_router(router)
    return app


app = create_app()
