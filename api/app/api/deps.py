"""FastAPI dependencies: what the lifespan built, and the authenticated caller."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from ..revocation import Revocations, RevocationUnavailable
from ..security import InvalidToken, TokenService
from ..settings import Settings

__all__ = ["Caller", "CallerDep", "Services", "ServicesDep", "SessionDep", "require_roles", "seconds_left"]


@dataclass
class Services:
    settings: Settings
    sessions: sessionmaker[Session]
    tokens: TokenService
    revocations: Revocations


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(services)]


def db_session(svc: ServicesDep) -> Iterator[Session]:
    with svc.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(db_session)]
_bearer = HTTPBearer(auto_error=False)


@dataclass(frozen=True)
class Caller:
    user_id: uuid.UUID
    org_id: uuid.UUID
    role: str
    jti: str
    expires_at: int


def caller(svc: ServicesDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Caller:
    if credentials is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "authentication required", {"WWW-Authenticate": "Bearer"})
    try:
        claims = svc.tokens.verify(credentials.credentials)
    except InvalidToken as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc), {"WWW-Authenticate": "Bearer"}) from None
    try:
        revoked = svc.revocations.is_revoked(claims["jti"])
    except RevocationUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
    if revoked:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "token revoked", {"WWW-Authenticate": "Bearer"})
    return Caller(
        user_id=uuid.UUID(claims["sub"]),
        org_id=uuid.UUID(claims["org"]),
        role=claims["role"],
        jti=claims["jti"],
        expires_at=int(claims["exp"]),
    )


CallerDep = Annotated[Caller, Depends(caller)]


def seconds_left(who: Caller) -> int:
    return max(1, who.expires_at - int(datetime.now(UTC).timestamp()))


def require_roles(*roles: str):  # type: ignore[no-untyped-def]
    def check(who: CallerDep) -> Caller:
        if who.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"requires one of the roles {', '.join(roles)}")
        return who

    return Depends(check)
