"""Revoked token ids (logout): in Redis when configured, else in this process."""

from __future__ import annotations

import threading
import time
from typing import Protocol

import redis

__all__ = ["MemoryRevocations", "RedisRevocations", "RevocationUnavailable", "Revocations"]


class RevocationUnavailable(RuntimeError):
    pass


class Revocations(Protocol):
    def revoke(self, jti: str, ttl_seconds: int) -> None: ...
    def is_revoked(self, jti: str) -> bool: ...


class RedisRevocations:
    PREFIX = "ecomind:revoked:"

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def revoke(self, jti: str, ttl_seconds: int) -> None:
        try:
            self.client.set(self.PREFIX + jti, b"1", ex=max(ttl_seconds, 1))
        except redis.RedisError as exc:
            raise RevocationUnavailable("the revocation store (Redis) is unavailable") from exc

    def is_revoked(self, jti: str) -> bool:
        try:
            return bool(self.client.exists(self.PREFIX + jti))
        except redis.RedisError as exc:
            # Fail closed: a logged-out token must not work because Redis is down.
            raise RevocationUnavailable("the revocation store (Redis) is unavailable") from exc


class MemoryRevocations:
    """Without Redis: revocations hold for this process only (documented limitation)."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def revoke(self, jti: str, ttl_seconds: int) -> None:
        now = time.monotonic()
        with self._lock:
            self._until = {k: v for k, v in self._until.items() if v > now}
            self._until[jti] = now + ttl_seconds

    def is_revoked(self, jti: str) -> bool:
        return self._until.get(jti, 0.0) > time.monotonic()
