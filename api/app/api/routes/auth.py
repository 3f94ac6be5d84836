"""Login, logout, and who am I."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, EmailStr, Field
from sqlalchemy import select

from ...models import AuditEvent, User
from ...revocation import RevocationUnavailable
from ...security import hash_password, verify_password
from ..deps import CallerDep, ServicesDep, SessionDep, seconds_left

__all__ = ["router"]

router = APIRouter(prefix="/v1/auth", tags=["auth"])

# Verifying against a fixed hash when the email is unknown keeps the timing the same.
_DUMMY_HASH = hash_password("not-a-user-password")


class Login(BaseModel):
    email: EmailStr
    password: str = Field(min_length=1, max_length=1024)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class Me(BaseModel):
    id: uuid.UUID
    org_id: uuid.UUID
    email: str
    role: str


@router.post("/login", response_model=TokenOut)
def login(body: Login, svc: ServicesDep, session: SessionDep) -> TokenOut:
    user = session.scalar(select(User).where(User.email == body.email.lower()))
    valid = verify_password(user.password_hash if user else _DUMMY_HASH, body.password)
    if user is None or not valid:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid email or password")
    token, expires_in = svc.tokens.issue(subject=str(user.id), org_id=str(user.org_id), role=user.role)
    session.add(AuditEvent(org_id=user.org_id, actor_id=user.id, action="auth.login", detail={}))
    session.commit()
    return TokenOut(access_token=token, expires_in=expires_in)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(who: CallerDep, svc: ServicesDep) -> None:
    try:
        svc.revocations.revoke(who.jti, seconds_left(who))
    except RevocationUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None


@router.get("/me", response_model=Me)
def me(who: CallerDep, session: SessionDep) -> Me:
    user = session.get(User, who.user_id)
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "user no longer exists")
    return Me(id=user.id, org_id=user.org_id, email=user.email, role=user.role)
