"""User management: only an OWNER or ADMIN creates users, in their own org.

An email is unique within an organisation. Whether it is used in another
organisation changes nothing here: the answer is the same 201, so an ADMIN learns
nothing about other organisations' members.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from app.api.deps import Caller, ServicesDep, SessionDep, UnitOfWorkRoute, require_roles
from app.api.errors import responses
from app.auth.emails import Email
from app.auth.hashing import shared_salt
from app.auth.passwords import password_problem
from app.data.tables import AuditEvent, Org, Role, User
from app.data.text import SafeText
from app.settings.knobs import Tuning

AdminCaller = Annotated[Caller, require_roles(Role.OWNER.value, Role.ADMIN.value)]

__all__ = ["publish_password_policy", "router"]

CONFLICT = "a user with this email exists in your organisation"

router = APIRouter(prefix="/v1/users", tags=["users"], route_class=UnitOfWorkRoute)


class NewUser(BaseModel):
    email: Email
    password: Annotated[
        SafeText,
        Field(
            min_length=1,
            max_length=1024,
            description="At least ECOMIND_PASSWORD_MIN_LENGTH characters (minLength: this server's setting) and a "
            "zxcvbn strength of at least ECOMIND_PASSWORD_MIN_SCORE (3 of 4 by default); a refusal says why.",
        ),
    ]
    role: Role
    org_id: uuid.UUID | None = None  # defaults to the caller's org; another org is refused


class UserOut(BaseModel):
    id: uuid.UUID
    org_id: uuid.UUID
    email: str
    role: Role


def publish_password_policy(openapi: dict[str, Any], tuning: Tuning) -> None:
    """The OpenAPI document says the length a new password needs on this server.

    The model checks only 1 to 1024 characters (its bounds are fixed when the class is made);
    the policy, read from the environment when the app is created, needs more. A schema
    saying minLength 1 would call an 8-character password valid, and it is refused."""
    password = openapi["components"]["schemas"]["NewUser"]["properties"]["password"]
    password["minLength"] = tuning.password_min_length


@router.post("", response_model=UserOut, status_code=status.HTTP_201_CREATED, responses=responses(401, 403, 409, 503))
def create_user(body: NewUser, session: SessionDep, svc: ServicesDep, who: AdminCaller) -> UserOut:
    org_id = body.org_id or who.org_id
    if org_id != who.org_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "users can only be created in your own organisation")
    if body.role is Role.OWNER and who.role != Role.OWNER.value:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only an OWNER can create another OWNER")
    org_name = session.scalar(select(Org.name).where(Org.id == org_id)) or ""
    problem = password_problem(body.password, [body.email, org_name], svc.tuning)
    if problem:
        raise RequestValidationError([{"loc": ("body", "password"), "msg": problem, "type": "password_policy"}])
    email = body.email  # normalised by its type
    # The conflict first: a 409 costs no argon2 computation, so a stream of creations of an email
    # the organisation has cannot keep the hashing workers busy. It tells only what the 409 says,
    # about the caller's own organisation; the constraint below stays the guard against a race.
    if session.scalar(select(User.id).where(User.org_id == org_id, User.email == email).limit(1)) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, CONFLICT)
    # The salt of the email's other memberships (any organisation): one argon2 computation
    # checks them all at login. Nothing of them reaches the caller.
    others = select(User.password_hash).where(User.email == email).order_by(User.created_at, User.id)
    password_hash = svc.hashing.hash(body.password, shared_salt(session.scalars(others)))
    # ON CONFLICT: of several concurrent creations of one email, one inserts, the rest get 409.
    user_id = session.scalar(
        insert(User)
        .values(id=uuid.uuid4(), org_id=org_id, email=email, password_hash=password_hash, role=body.role.value)
        .on_conflict_do_nothing(constraint="uq_users_org_email")
        .returning(User.id)
    )
    if user_id is None:
        raise HTTPException(status.HTTP_409_CONFLICT, CONFLICT)
    session.add(
        AuditEvent(
            org_id=org_id,
            actor_id=who.user_id,
            action="user.create",
            detail={"user": str(user_id), "role": body.role.value},
        )
    )
    session.commit()
    return UserOut(id=user_id, org_id=org_id, email=email, role=body.role)
