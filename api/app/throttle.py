"""Login limits: failures per client address and per account, and lockouts that grow.

Built on ``limits`` (the library slowapi uses) with its Redis storage, so every
replica shares the counts:

- a client address may fail ``ECOMIND_LOGIN_FAILURES_PER_ADDRESS`` times per window;
  beyond that its logins are refused (429) until the window moves on;
- an account (an email) may fail ``ECOMIND_LOGIN_FAILURES_PER_ACCOUNT`` times per
  window; the failure that reaches the limit locks it for ``ECOMIND_LOCKOUT_SECONDS``,
  the next lockout for twice that, and so on up to ``ECOMIND_LOCKOUT_MAX_SECONDS``;
  the doubling is forgotten ``ECOMIND_LOCKOUT_MEMORY_SECONDS`` after the first
  lockout, or at a successful login.

Only failures count, so users behind one address (an office, a NAT) who type their
password right are never limited. Unknown emails are counted and locked exactly
like known ones, so a lockout tells nothing about whether an account exists.

When Redis is unreachable the same rules run on an in-process ``limits`` memory
storage (slowapi's "in-memory fallback"): logins keep working, limits hold per
process instead of per fleet, and Redis is tried again after a few seconds.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import redis
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from .tuning import Tuning

__all__ = ["LoginThrottle", "Refusal"]

log = logging.getLogger("app.throttle")

REDIS_RETRY_SECONDS = 5.0
T = TypeVar("T")


@dataclass(frozen=True)
class Refusal:
    """Why a login is refused, and for how long (``Retry-After``)."""

    reason: str  # "address_limited" | "account_locked"
    retry_after: int
    lockout_started: bool = False
    lockout_level: int = 0


class _Counters:
    """The rules over one storage."""

    def __init__(self, storage: Storage, tuning: Tuning) -> None:
        self.storage = storage
        self.limiter = MovingWindowRateLimiter(storage)
        self.tuning = tuning
        self.address_item = tuning.address_item
        self.account_item = tuning.account_item

    def lock_remaining(self, account: str) -> int:
        key = f"login-lock/{account}"
        if self.storage.get(key) <= 0:
            return 0
        return max(1, math.ceil(self.storage.get_expiry(key) - time.time()))

    def address_refusal(self, address: str) -> Refusal | None:
        if self.limiter.test(self.address_item, "login-address", address):
            return None
        reset = self.limiter.get_window_stats(self.address_item, "login-address", address).reset_time
        return Refusal("address_limited", max(1, math.ceil(reset - time.time())))

    def record_failure(self, address: str, account: str) -> Refusal | None:
        self.limiter.hit(self.address_item, "login-address", address)
        remaining = self.lock_remaining(account)
        if remaining:
            return Refusal("account_locked", remaining)
        self.limiter.hit(self.account_item, "login-account", account)
        if self.limiter.get_window_stats(self.account_item, "login-account", account).remaining > 0:
            return None
        level_key = f"login-lock-level/{account}"
        level = self.storage.get(level_key) + 1
        seconds = min(self.tuning.lockout_seconds * 2 ** (level - 1), self.tuning.lockout_max_seconds)
        # Two failures racing here: the first to create the lock key escalates.
        if self.storage.incr(f"login-lock/{account}", seconds) == 1:
            self.storage.incr(level_key, self.tuning.lockout_memory_seconds)
            self.limiter.clear(self.account_item, "login-account", account)
            return Refusal("account_locked", seconds, lockout_started=True, lockout_level=level)
        return Refusal("account_locked", self.lock_remaining(account) or seconds)

    def record_success(self, account: str) -> None:
        self.limiter.clear(self.account_item, "login-account", account)
        self.storage.clear(f"login-lock-level/{account}")


class LoginThrottle:
    def __init__(self, tuning: Tuning, redis_url: str | None, client: redis.Redis | None) -> None:
        self.memory = _Counters(MemoryStorage(), tuning)
        self.shared: _Counters | None = None
        if redis_url is not None and client is not None:
            storage = RedisStorage(
                redis_url, connection_pool=client.connection_pool, key_prefix="ecomind", wrap_exceptions=True
            )
            self.shared = _Counters(storage, tuning)
        self._redis_down_until = 0.0

    @staticmethod
    def account_key(email: str) -> str:
        # Keys name no email: Redis is not where a list of our users should leak from.
        return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]

    def _on(self, op: Callable[[_Counters], T]) -> T:
        if self.shared is not None and time.monotonic() >= self._redis_down_until:
            try:
                return op(self.shared)
            except (StorageError, redis.RedisError) as exc:
                log.warning(
                    "login limits: Redis unavailable (%s); limiting per process for %.0f s",
                    type(exc).__name__,
                    REDIS_RETRY_SECONDS,
                )
                self._redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
        return op(self.memory)

    @property
    def degraded(self) -> bool:
        return self.shared is None or time.monotonic() < self._redis_down_until

    def admit(self, address: str, email: str) -> Refusal | None:
        """Before any password is checked: is this address or account refused now?"""
        account = self.account_key(email)

        def check(c: _Counters) -> Refusal | None:
            remaining = c.lock_remaining(account)
            if remaining:
                return Refusal("account_locked", remaining)
            return c.address_refusal(address)

        return self._on(check)

    def failed(self, address: str, email: str) -> Refusal | None:
        """After a wrong password; a refusal when this failure locked the account."""
        account = self.account_key(email)
        return self._on(lambda c: c.record_failure(address, account))

    def succeeded(self, email: str) -> None:
        account = self.account_key(email)
        self._on(lambda c: c.record_success(account))
