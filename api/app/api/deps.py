"""FastAPI dependencies: what the lifespan built, and the authenticated caller."""

from __future__ import annotations

import functools
import inspect
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError
from sqlalchemy.orm import Session, sessionmaker

from app.auth.hashing import PasswordHashing
from app.auth.limits import LoginThrottle
from app.auth.revocations import Revocations
from app.auth.tokens import InvalidToken, TokenService
from app.auth.users import ActiveUsers
from app.data.tables import Role
from app.data.text import SafeText
from app.settings.knobs import Tuning
from app.settings.loading import Settings

__all__ = [
    "Caller",
    "CallerDep",
    "Services",
    "ServicesDep",
    "SessionDep",
    "UnitOfWorkRoute",
    "expires_at",
    "require_roles",
]


@dataclass
class Services:
    settings: Settings
    sessions: sessionmaker[Session]
    tokens: TokenService
    revocations: Revocations
    tuning: Tuning
    stale_after: float  # seconds without a refresh before a secret is stale (/ready, /metrics)
    hashing: PasswordHashing
    throttle: LoginThrottle
    users: ActiveUsers


async def services(request: Request) -> Services:
    # async: read on the event loop, so a route that needs nothing more (/ready) takes no
    # request thread for it, and the others no thread hop.
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(services)]


def db_session(svc: ServicesDep) -> Iterator[Session]:
    with svc.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(db_session, scope="function")]


class UnitOfWorkRoute(APIRoute):
    """A route whose database session is closed, its connection back in the pool, by the request
    thread that ran the route, as soon as the route returns.

    A yield dependency's teardown runs later, on a thread outside the request threads' limit,
    after the response is serialised (on a request thread of its own): under a flood, finished
    routes held their connections while new ones took the threads they gave back, and the pool,
    one connection per request thread, ran dry. Now a request thread holds a connection only
    while it runs a route."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, _closing_sessions(endpoint), **kwargs)


def _closing_sessions(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(endpoint):
        return endpoint

    @functools.wraps(endpoint)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return endpoint(*args, **kwargs)
        finally:
            for value in kwargs.values():
                if isinstance(value, Session):
                    value.close()

    return run


_bearer = HTTPBearer(auto_error=False)


@dataclass(frozen=True)
class Caller:
    user_id: uuid.UUID
    org_id: uuid.UUID
    role: str
    jti: str
    expires_at: int


class Claims(BaseModel):
    """The claims we sign; a token signed with our key but holding anything else is refused."""

    model_config = ConfigDict(extra="forbid")
    sub: uuid.UUID
    org: uuid.UUID
    role: Role
    jti: Annotated[SafeText, Field(min_length=1, max_length=64)]
    iat: StrictInt
    exp: StrictInt


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, {"WWW-Authenticate": "Bearer"})


def caller(svc: ServicesDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Caller:
    if credentials is None:
        raise _unauthorized("authentication required")
    try:
        claims = Claims.model_validate(svc.tokens.verify(credentials.credentials))
    except InvalidToken as exc:
        raise _unauthorized(str(exc)) from None
    except ValidationError:
        raise _unauthorized("malformed token claims") from None
    if svc.revocations.is_revoked(claims.jti):
        raise _unauthorized("token revoked")
    account = svc.users.get(claims.sub)
    if account is None:
        raise _unauthorized("the user of this token no longer exists or is disabled")
    if account.org_id != claims.org:
        raise _unauthorized("the user of this token has changed organisation")
    # The role of the moment, not the one at login: a demotion takes effect at once.
    return Caller(account.user_id, account.org_id, account.role, claims.jti, claims.exp)


CallerDep = Annotated[Caller, Depends(caller)]


def expires_at(who: Caller) -> datetime:
    return datetime.fromtimestamp(who.expires_at, UTC)


def require_roles(*roles: str):  # type: ignore[no-untyped-def]
    def check(who: CallerDep) -> Caller:
        if who.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"requires one of the roles {', '.join(roles)}")
        return who

    return Depends(check)
