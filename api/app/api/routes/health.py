"""Liveness and readiness."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from ..deps import ServicesDep

__all__ = ["router"]

router = APIRouter()
log = logging.getLogger("app.api.health")


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]
    # Per secret variable read from Secrets Manager: the region that served it (a
    # replica's after a failover). Names no secret, host or value.
    secrets: dict[str, dict[str, str]] = {}


def _secrets(svc: ServicesDep) -> dict[str, dict[str, str]]:
    served: dict[str, dict[str, str]] = {}
    for name in ("DATABASE_URL", "JWT_SECRET", "REDIS_URL"):
        if svc.settings.has_secret(name):
            region = svc.settings.secret(name).get().region
            if region:
                served[name] = {"region": region}
    return served


@router.get("/health")
def health() -> dict[str, str]:
    """Liveness: the process answers; no dependency is touched."""
    return {"status": "ok"}


@router.get(
    "/ready",
    response_model=Readiness,
    responses={
        503: {
            "model": Readiness,
            "description": "PostgreSQL or Redis does not answer.",
            "headers": {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
        }
    },
)
def ready(request: Request, svc: ServicesDep) -> JSONResponse:
    """Readiness: PostgreSQL and (when configured) Redis answer. Never names a host or a secret."""
    checks: dict[str, str] = {}
    try:
        with svc.sessions() as session:
            session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        log.warning("readiness: database unavailable (%s)", type(exc).__name__)
        checks["database"] = "unavailable"
    redis_client = request.app.state.redis
    if redis_client is not None:
        try:
            redis_client.ping()
            checks["redis"] = "ok"
        except Exception as exc:  # noqa: BLE001
            log.warning("readiness: redis unavailable (%s)", type(exc).__name__)
            checks["redis"] = "unavailable"
    ok = all(v == "ok" for v in checks.values())
    body = {"status": "ready" if ok else "unavailable", "checks": checks, "secrets": _secrets(svc)}
    if ok:
        return JSONResponse(body)
    return JSONResponse(body, status_code=503, headers={"Retry-After": str(svc.tuning.unavailable_retry_after)})
