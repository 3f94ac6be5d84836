"""Liveness and readiness."""

from __future__ import annotations

import logging
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from app.api.deps import Services, ServicesDep
from app.observe.metrics import freshness

__all__ = ["router"]

router = APIRouter()
log = logging.getLogger("app.api.health")


class SecretReadiness(BaseModel):
    """One secret variable held as a reference. Names no secret, host or value."""

    region: str | None = None  # the AWS region that served it (a replica's after a failover)
    seconds_since_refresh: int
    stale: bool  # not refreshed for longer than the stale threshold


class Readiness(BaseModel):
    status: str  # ready | degraded (a secret is stale, ECOMIND_READY_ON_STALE=report) | unavailable
    checks: dict[str, str]
    secrets: dict[str, SecretReadiness] = {}
    stale_after_seconds: float | None = None


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers; no dependency is touched.

    ``async``: it runs on the event loop, so it answers while every request thread waits
    on a database that does not answer."""
    return {"status": "ok"}


@router.get(
    "/ready",
    response_model=Readiness,
    responses={
        503: {
            "model": Readiness,
            "description": "PostgreSQL or Redis does not answer (or a secret is stale and "
            "ECOMIND_READY_ON_STALE=fail).",
            "headers": {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
        }
    },
)
async def ready(request: Request, svc: ServicesDep) -> JSONResponse:
    """Readiness: PostgreSQL and (when configured) Redis answer; each secret's freshness.

    A secret is stale when its last successful refresh is older than the threshold
    (ECOMIND_SECRETS_STALE_AFTER, default 3 x SECRETS_CACHE_TTL), so one failed refresh
    never is. A stale secret makes the status "degraded" (200), or with
    ECOMIND_READY_ON_STALE=fail, "unavailable" (503). Never names a host or a secret.

    Its checks run on threads of their own (and the pool keeps a connection for each): a
    flood that holds every request thread does not make the probe wait behind it.
    """
    body, ok = await anyio.to_thread.run_sync(_readiness, request, svc, limiter=request.app.state.probe_threads)
    if ok:
        return JSONResponse(body)
    return JSONResponse(body, status_code=503, headers={"Retry-After": str(svc.tuning.unavailable_retry_after)})


def _readiness(request: Request, svc: Services) -> tuple[dict[str, Any], bool]:
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
    rows = freshness(svc.settings, svc.stale_after)
    secrets = {
        row.variable: SecretReadiness(
            region=row.region, seconds_since_refresh=int(row.since_refresh), stale=row.stale
        ).model_dump()
        for row in rows
    }
    if rows:
        checks["secrets"] = "stale" if any(row.stale for row in rows) else "ok"
    report_only = svc.tuning.ready_on_stale == "report"
    ok = all(v == "ok" or (k == "secrets" and report_only) for k, v in checks.items())
    status = ("ready" if checks.get("secrets", "ok") == "ok" else "degraded") if ok else "unavailable"
    return {"status": status, "checks": checks, "secrets": secrets, "stale_after_seconds": svc.stale_after}, ok
