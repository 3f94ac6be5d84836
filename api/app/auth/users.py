"""Is the user behind a token still there and enabled? PostgreSQL, through a short cache.

A token outlives changes to its user: deleted, disabled, moved. Each request checks
the user in PostgreSQL, but a user found enabled is remembered for
``ECOMIND_USER_CACHE_SECONDS`` (default 5) per process, so a client's burst of
requests costs one query. A deleted or disabled user's tokens stop working within
that time. Absent users are not cached: they are rare, and a cached "absent" would
hide a user created a moment later.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass

from cachetools import TTLCache
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.data.tables import User

__all__ = ["ActiveUsers"]


@dataclass(frozen=True)
class Account:
    user_id: uuid.UUID
    org_id: uuid.UUID
    role: str


class ActiveUsers:
    def __init__(self, sessions: sessionmaker[Session], ttl_seconds: float, maxsize: int = 10_000) -> None:
        self.sessions = sessions
        self._cache: TTLCache[uuid.UUID, Account] | None = (
            TTLCache(maxsize=maxsize, ttl=ttl_seconds) if ttl_seconds > 0 else None
        )
        self._lock = threading.Lock()

    def get(self, user_id: uuid.UUID) -> Account | None:
        """The enabled user, or ``None`` when it was deleted or disabled."""
        if self._cache is not None:
            with self._lock:
                cached = self._cache.get(user_id)
            if cached is not None:
                return cached
        with self.sessions() as session:
            row = session.execute(
                select(User.org_id, User.role).where(User.id == user_id, User.disabled_at.is_(None))
            ).first()
        if row is None:
            return None
        account = Account(user_id, row.org_id, row.role)
        if self._cache is not None:
            with self._lock:
                self._cache[user_id] = account
        return account
