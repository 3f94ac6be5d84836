"""Usage events: AI/compute usage with energy (Wh) and emissions (g CO2e), per org."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, status
from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, WithJsonSchema
from sqlalchemy import func, select

from app.api.deps import Caller, CallerDep, SessionDep, UnitOfWorkRoute, require_roles
from app.api.errors import responses
from app.data.tables import Role, UsageEvent
from app.data.text import SafeText

__all__ = ["router"]

router = APIRouter(prefix="/v1/events", tags=["events"], route_class=UnitOfWorkRoute)

WRITERS = (Role.OWNER.value, Role.ADMIN.value, Role.ANALYST.value)
WriterCaller = Annotated[Caller, require_roles(*WRITERS)]


# What the columns hold (numeric(18, 6)): at most 12 digits before the point and 6 after.
WHOLE_DIGITS, DECIMALS = 12, 6
# An amount as text: plain digits, a point and decimals; no sign, exponent, blank or
# underscore, all of which Python's Decimal would otherwise take.
AMOUNT_TEXT = rf"^[0-9]{{1,{WHOLE_DIGITS}}}(\.[0-9]{{1,{DECIMALS}}})?$"


def _amount_text(value: object) -> object:
    if isinstance(value, str) and not re.fullmatch(AMOUNT_TEXT, value):
        raise ValueError(
            f'must be a number, or a decimal as text like "12.5" (up to {WHOLE_DIGITS} digits, '
            f"then a point and up to {DECIMALS})"
        )
    return value


# The published schema is what is accepted: a JSON number from 0 to below 10^12 with at most
# 6 decimals (a number is read as the shortest decimal that spells it), or such a decimal as
# text. pydantic's own schema for a Decimal published any string ("" included) and any
# number >= 0, and both were refused.
Amount = Annotated[
    Decimal,
    BeforeValidator(_amount_text),
    Field(ge=0, max_digits=WHOLE_DIGITS + DECIMALS, decimal_places=DECIMALS),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "number",
                    "minimum": 0,
                    "exclusiveMaximum": 10**WHOLE_DIGITS,
                    "multipleOf": float(Decimal(1).scaleb(-DECIMALS)),
                },
                {"type": "string", "pattern": AMOUNT_TEXT},
            ],
            "examples": ["12.5"],
        },
        mode="validation",
    ),
]


# When an event may have occurred: from this day, to this far ahead of the server's clock (a
# client's clock runs ahead of ours). 0, read as 1970, or the year 9999 is a client's bug.
EARLIEST_EVENT = datetime(2000, 1, 1, tzinfo=UTC)
AHEAD_OF_CLOCK = timedelta(days=1)
WINDOW = f"from {EARLIEST_EVENT:%Y-%m-%d} to one day ahead of the server's clock (UTC when no offset is given)"


def _in_window(value: datetime) -> datetime:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if not EARLIEST_EVENT <= aware <= datetime.now(UTC) + AHEAD_OF_CLOCK:
        raise ValueError(f"must be {WINDOW}")
    return value


def _past_years() -> str:
    """A pattern of the years wholly in the window whenever the server runs: 2000 to last year."""
    years = range(EARLIEST_EVENT.year, datetime.now(UTC).year)
    return "^(" + "|".join(str(year) for year in years) + ")-"


# The published schema is what is always accepted: a date-time of a year from 2000 to last year
# (the window's end moves with the clock, which JSON Schema cannot say; its description does).
OccurredAt = Annotated[
    datetime,
    AfterValidator(_in_window),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": _past_years(),
            "description": (
                f"When it occurred: {WINDOW}. The pattern lists only the years wholly inside that window, "
                "what is accepted on any day; a date of the current year up to one day ahead of the clock is "
                "accepted too, which a pattern cannot say."
            ),
        },
        mode="validation",
    ),
]


class NewEvent(BaseModel):
    kind: SafeText = Field(min_length=1, max_length=64, examples=["inference"])
    model: SafeText | None = Field(None, max_length=200)
    energy_wh: Amount
    co2e_g: Amount
    occurred_at: OccurredAt | None = None


class EventOut(BaseModel):
    id: int
    org_id: uuid.UUID


class KindTotal(BaseModel):
    kind: str
    events: int
    energy_wh: Decimal
    co2e_g: Decimal


class Summary(BaseModel):
    org_id: uuid.UUID
    events: int
    energy_wh: Decimal
    co2e_g: Decimal
    by_kind: list[KindTotal]


@router.post("", response_model=EventOut, status_code=status.HTTP_201_CREATED, responses=responses(401, 403, 503))
def record(body: NewEvent, session: SessionDep, who: WriterCaller) -> EventOut:
    event = UsageEvent(
        org_id=who.org_id,
        user_id=who.user_id,
        kind=body.kind,
        model=body.model,
        energy_wh=body.energy_wh,
        co2e_g=body.co2e_g,
    )
    if body.occurred_at is not None:
        event.occurred_at = body.occurred_at
    session.add(event)
    session.commit()
    return EventOut(id=event.id, org_id=event.org_id)


@router.get("/summary", response_model=Summary, responses=responses(401, 503))
def summary(who: CallerDep, session: SessionDep) -> Summary:
    rows = session.execute(
        select(
            UsageEvent.kind,
            func.count(),
            func.coalesce(func.sum(UsageEvent.energy_wh), 0),
            func.coalesce(func.sum(UsageEvent.co2e_g), 0),
        )
        .where(UsageEvent.org_id == who.org_id)
        .group_by(UsageEvent.kind)
        .order_by(UsageEvent.kind)
    ).all()
    by_kind = [KindTotal(kind=k, events=n, energy_wh=e, co2e_g=c) for k, n, e, c in rows]
    return Summary(
        org_id=who.org_id,
        events=sum(k.events for k in by_kind),
        energy_wh=sum((k.energy_wh for k in by_kind), Decimal(0)),
        co2e_g=sum((k.co2e_g for k in by_kind), Decimal(0)),
        by_kind=by_kind,
    )
