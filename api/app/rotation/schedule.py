"""When a secret was last rotated and when its next rotation is due: one answer for
``ecomind doctor``, ``secrets list`` and ``secrets describe``.

Secrets Manager sets ``LastRotatedDate`` when it runs a rotation itself; a rotation driven
here (``ecomind secrets rotate --local``) moves ``AWSCURRENT`` to a new version and sets
none, so the date the ``AWSCURRENT`` version was made counts too. The next rotation is
due one period after the last; when Secrets Manager runs the rotation (the secret has a
function) and has scheduled it earlier (``NextRotationDate``), that is when it happens.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

__all__ = ["last_rotated", "next_rotation"]


def last_rotated(meta: Mapping[str, Any], versions: Iterable[Mapping[str, Any]] = ()) -> datetime | None:
    """The latest of: Secrets Manager's last rotation, the secret's creation, and the creation
    of its ``AWSCURRENT`` version (``versions``: ListSecretVersionIds' answer)."""
    known = [d for d in (meta.get("LastRotatedDate"), meta.get("CreatedDate")) if isinstance(d, datetime)]
    for version in versions:
        if "AWSCURRENT" in version.get("VersionStages", []) and isinstance(version.get("CreatedDate"), datetime):
            known.append(version["CreatedDate"])
    return max(known) if known else None


def next_rotation(meta: Mapping[str, Any], last: datetime | None, default_days: int | None = None) -> datetime | None:
    """When the next rotation is due (None: rotation is off, or nothing to count from).

    ``default_days``: the period when the rules give none in days (a schedule expression)."""
    if not meta.get("RotationEnabled"):
        return None
    days = (meta.get("RotationRules") or {}).get("AutomaticallyAfterDays") or default_days
    due = [last + timedelta(days=int(days))] if last is not None and days else []
    scheduled = meta.get("NextRotationDate")
    if meta.get("RotationLambdaARN") and isinstance(scheduled, datetime):
        due.append(scheduled)  # Secrets Manager runs it then, whatever was rotated by hand since
    return min(due) if due else None
