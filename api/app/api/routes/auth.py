"""Login, logout, and who am I.

A login takes a slot of the throttle (address and account limits, lockouts), then
the password is checked on the bounded hashing pool. Every failure, refusal and
lockout is written to the audit table, in the organisation concerned or in none.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.api.deps import CallerDep, Services, ServicesDep, SessionDep, UnitOfWorkRoute, expires_at
from app.api.errors import responses
from app.auth.emails import Email
from app.auth.hashing import salt_of, shared_salt
from app.auth.limits import Refusal
from app.data.tables import AuditEvent, User
from app.data.text import SafeText
from app.telemetry import LOGIN_FAILURES, LOGIN_LOCKOUTS, LOGIN_THROTTLED

__all__ = ["router"]

router = APIRouter(prefix="/v1/auth", tags=["auth"], route_class=UnitOfWorkRoute)

# One email may have a user in several organisations; a login checks at most this many.
MAX_MEMBERSHIPS = 10
CREATED = (User.created_at, User.id)


class Login(BaseModel):
    email: Email
    password: Annotated[SafeText, Field(min_length=1, max_length=1024)]
    # Only needed to choose among several organisations sharing this email and password.
    org_id: uuid.UUID | None = None


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class Me(BaseModel):
    id: uuid.UUID
    org_id: uuid.UUID
    email: str
    role: str


def _address(request: Request) -> str:
    # Behind a proxy, uvicorn's --proxy-headers/--forwarded-allow-ips set the client from X-Forwarded-For.
    return request.client.host if request.client else "unknown"


def _audit(session: Session, action: str, org_id: uuid.UUID | None, detail: dict[str, Any]) -> None:
    session.add(AuditEvent(org_id=org_id, actor_id=None, action=action, detail=detail))


_REFUSALS = {
    "account_locked": "too many failed logins for this account: it is locked for a while",
    "address_limited": "too many failed logins from this address",
    # No password was wrong: logins of this account already being checked fill its window.
    "account_busy": "too many logins of this account are being checked at once; retry in a moment",
    "address_busy": "too many logins from this address are being checked at once; retry in a moment",
}


def _refuse(
    svc: Services, session: Session, refusal: Refusal, org_id: uuid.UUID | None, detail: dict[str, Any]
) -> HTTPException:
    svc.settings.stats.inc(LOGIN_THROTTLED, refusal.reason)
    if refusal.lockout_started:
        svc.settings.stats.inc(LOGIN_LOCKOUTS)
        _audit(
            session,
            "auth.lockout",
            org_id,
            {**detail, "seconds": refusal.retry_after, "level": refusal.lockout_level},
        )
    if refusal.audit:  # the first refusal of its period: the ones after it would only add rows
        _audit(
            session,
            "auth.login_refused",
            org_id,
            {**detail, "reason": refusal.reason, "retry_after": refusal.retry_after},
        )
    session.commit()
    message = _REFUSALS[refusal.reason]
    return HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, message, {"Retry-After": str(refusal.retry_after)})


@router.post("/login", response_model=TokenOut, responses=responses(401, 429, 503))
def login(body: Login, request: Request, svc: ServicesDep, session: SessionDep) -> TokenOut:
    email = body.email  # normalised by its type
    address = _address(request)
    query = select(User).where(User.email == email)
    if body.org_id is not None:
        query = query.where(User.org_id == body.org_id)
    candidates = list(session.scalars(query.order_by(*CREATED).limit(MAX_MEMBERSHIPS)))
    memberships = session.scalar(select(func.count()).select_from(User).where(User.email == email)) or 0
    # The failures of a login concern one organisation only when one membership was tried:
    # the email's only one, or the one org_id named. Otherwise the row has no organisation, so
    # one organisation never learns of logins (and addresses) aimed at another's member.
    concerned = candidates[0].org_id if len(candidates) == 1 and (memberships == 1 or body.org_id) else None
    detail: dict[str, Any] = {"email": email, "address": address, "degraded_limits": svc.throttle.degraded}

    # The slot is taken before any password is checked, atomically: parallel logins cannot
    # check more passwords than the limit.
    attempt = svc.throttle.admit(address, email)
    if isinstance(attempt, Refusal):
        raise _refuse(svc, session, attempt, concerned, detail)
    try:
        # The memberships of an email share one salt: one argon2 computation checks them all,
        # and an unknown email costs one too, so the time taken tells neither whether the
        # email exists nor in how many organisations.
        matches = svc.hashing.check([u.password_hash for u in candidates], body.password)
        matched = next((u for u, ok in zip(candidates, matches, strict=True) if ok and u.disabled_at is None), None)
    except BaseException:
        svc.throttle.release(attempt)
        raise
    if matched is None:
        svc.settings.stats.inc(LOGIN_FAILURES)
        refusal = svc.throttle.failed(attempt)
        _audit(session, "auth.login_failed", concerned, detail)
        if refusal is not None:
            raise _refuse(svc, session, refusal, concerned, detail)
        session.commit()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid email or password")

    # A success forgets no failure, whatever the email's memberships: the counts are per email,
    # so forgetting would let one organisation's admin (who chose the password of their own
    # membership) reset the guesses aimed at another's member, and forgetting only for an email
    # with one membership would tell that admin whether the email is a member elsewhere.
    # Time forgets them (the window, ECOMIND_LOCKOUT_MEMORY_SECONDS), or `ecomind users unlock`.
    refusal = svc.throttle.succeeded(attempt)
    if refusal is not None:  # locked while the password was checked: no token
        raise _refuse(svc, session, refusal, concerned, detail)
    # Older parameters, or a salt of its own (a membership from before salts were shared):
    # rehashed now, with the email's shared salt.
    salt = shared_salt(session.scalars(select(User.password_hash).where(User.email == email).order_by(*CREATED)))
    if svc.hashing.needs_rehash(matched.password_hash) or salt_of(matched.password_hash) != salt:
        matched.password_hash = svc.hashing.hash(body.password, salt)
    token, expires_in = svc.tokens.issue(subject=str(matched.id), org_id=str(matched.org_id), role=matched.role)
    session.add(AuditEvent(org_id=matched.org_id, actor_id=matched.id, action="auth.login", detail={}))
    session.commit()
    return TokenOut(access_token=token, expires_in=expires_in)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=responses(401, 503))
def logout(who: CallerDep, svc: ServicesDep) -> None:
    svc.revocations.revoke(who.jti, expires_at(who))


@router.get("/me", response_model=Me, responses=responses(401, 503))
def me(who: CallerDep, session: SessionDep) -> Me:
    user = session.get(User, who.user_id)
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "user no longer exists", {"WWW-Authenticate": "Bearer"})
    return Me(id=user.id, org_id=user.org_id, email=user.email, role=user.role)
