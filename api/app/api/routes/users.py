"""User management: only an OWNER or ADMIN creates users, in their own org."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, EmailStr, Field
from sqlalchemy import select

from ...models import AuditEvent, Role, User
from ...security import hash_password
from ..deps import Caller, SessionDep, require_roles

AdminCaller = Annotated[Caller, require_roles(Role.OWNER.value, Role.ADMIN.value)]

__all__ = ["router"]

router = APIRouter(prefix="/v1/users", tags=["users"])


class NewUser(BaseModel):
    email: EmailStr
    password: str = Field(min_length=12, max_length=1024)
    role: Role
    org_id: uuid.UUID | None = None  # defaults to the caller's org; another org is refused


class UserOut(BaseModel):
    id: uuid.UUID
    org_id: uuid.UUID
    email: str
    role: Role


@router.post("", response_model=UserOut, status_code=status.HTTP_201_CREATED)
def create_user(body: NewUser, session: SessionDep, who: AdminCaller) -> UserOut:
    org_id = body.org_id or who.org_id
    if org_id != who.org_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "users can only be created in your own organisation")
    if body.role is Role.OWNER and who.role != Role.OWNER.value:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only an OWNER can create another OWNER")
    email = body.email.lower()
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, "a user with this email exists")
    user = User(org_id=org_id, email=email, password_hash=hash_password(body.password), role=body.role.value)
    session.add(user)
    session.flush()
    session.add(
        AuditEvent(
            org_id=org_id, actor_id=who.user_id, action="user.create", detail={"user": str(user.id), "role": user.role}
        )
    )
    session.commit()
    return UserOut(id=user.id, org_id=user.org_id, email=user.email, role=Role(user.role))
