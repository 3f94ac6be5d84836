"""Login limits: attempts per client address and per account, and lockouts that grow.

Every replica shares the counts through Redis:

- a client address may fail ``ECOMIND_LOGIN_FAILURES_PER_ADDRESS`` times per window;
  beyond that its logins are refused (429) until the window moves on. An IPv4 address
  counts alone; an IPv6 address counts with its /64 (what one host or one site is given),
  and an IPv4-mapped IPv6 address (``::ffff:203.0.113.7``) as the IPv4 address it is;
- an account (an email) may fail ``ECOMIND_LOGIN_FAILURES_PER_ACCOUNT`` times per
  window; the failure that reaches the limit locks it for ``ECOMIND_LOCKOUT_SECONDS``,
  the next lockout for twice that, and so on up to ``ECOMIND_LOCKOUT_MAX_SECONDS``;
  the doubling is forgotten ``ECOMIND_LOCKOUT_MEMORY_SECONDS`` after the first
  lockout. A successful login forgets neither the failures nor the doubling (see
  :meth:`LoginThrottle.succeeded`): only time does, or ``ecomind users unlock``.

A login takes its slot before its password is checked: :meth:`LoginThrottle.admit`
reserves one attempt for the address and one for the account in a single atomic
step, and refuses when failures plus attempts in flight already fill either window.
So parallel logins cannot check more passwords than the limit, whatever their number.
A login refused only because attempts still in flight fill the account's window, or the
address's, is refused at once (``account_busy``, ``address_busy``, ``Retry-After: 1``),
never after a wait in its request thread: it is no failure and no lockout, and its retry
finds the slots given back by the attempts that succeeded.
The attempt then becomes a failure (:meth:`~LoginThrottle.failed`) or is given back
(:meth:`~LoginThrottle.succeeded`, :meth:`~LoginThrottle.release`); a success is
refused when the account got locked while its password was being checked. An
attempt whose process died is forgotten after ``PENDING_SECONDS``.

Only failures stay counted, so users behind one address (an office, a NAT) who type
their password right never add to its count; they are refused while others' failures
fill it, and, for a moment, while logins in flight fill a window. Unknown emails are counted and locked
exactly like known ones, so a lockout tells nothing about whether an account exists.

When Redis is unreachable the same rules run in process memory: logins keep
working, limits hold per process instead of per fleet, and Redis is tried again
after a few seconds.

The keys (``ecomind:login:...``, built by :class:`Keys` only) name a digest of the
email, never the email.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import redis

from .tuning import Tuning

__all__ = ["Attempt", "Keys", "LoginThrottle", "Refusal", "unlock_account"]

log = logging.getLogger("app.throttle")

REDIS_RETRY_SECONDS = 5.0
# An attempt in flight holds its slot at most this long (a process that died mid-login).
PENDING_SECONDS = 60
# Retry-After when the account's window is full of attempts still in flight: they end soon.
BUSY_RETRY_SECONDS = 1
# The IPv6 prefix one client's address limit counts (RFC 6177: a site gets at least a /64).
IPV6_CLIENT_PREFIX = 64
T = TypeVar("T")


@dataclass(frozen=True)
class Refusal:
    """Why a login is refused, and for how long (``Retry-After``)."""

    reason: str  # "address_limited" | "account_locked" | "account_busy" | "address_busy"
    retry_after: int
    lockout_started: bool = False
    lockout_level: int = 0
    # Worth an audit row: the first refusal of its kind in its period (per account while it is
    # locked, per address while it is limited); the ones after it add nothing but rows.
    audit: bool = True


@dataclass(frozen=True)
class Keys:
    """Where one login's counts live: the one place the key format is written."""

    address: str  # attempts of the client address (members "p:ID" in flight, "f:ID" failed)
    pending: str  # the account's attempts in flight
    failures: str  # the account's failures in the window
    lock: str  # present while the account is locked
    level: str  # how many lockouts in a row (the doubling)
    account_refused: str  # present once a refusal for the account was reported in this period
    address_refused: str  # the same, for the address

    PREFIX = "ecomind:login:"

    @staticmethod
    def account(email: str) -> str:
        # Keys name no email: Redis is not where a list of our users should leak from.
        return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]

    @staticmethod
    def client(address: str) -> str:
        """What one client's address limit counts: an IPv4 address, or an IPv6 address's /64.

        One IPv6 host is routinely given a /64 and may pick any of its 2^64 addresses: a
        limit per /128 would give it 2^64 windows. Anything that is not an address (a test
        client's name) counts as it is."""
        try:
            ip = ipaddress.ip_address(address.strip().split("%", 1)[0])
        except ValueError:
            return address
        if isinstance(ip, ipaddress.IPv6Address):
            if ip.ipv4_mapped is not None:  # an IPv4 client seen by a dual-stack socket
                return str(ip.ipv4_mapped)
            return str(ipaddress.IPv6Network((ip, IPV6_CLIENT_PREFIX), strict=False))
        return str(ip)

    @classmethod
    def of(cls, address: str, email: str) -> Keys:
        account = f"{cls.PREFIX}account:{cls.account(email)}:"
        address = cls.client(address)
        return cls(
            address=f"{cls.PREFIX}address:{address}",
            pending=account + "pending",
            failures=account + "failures",
            lock=account + "lock",
            level=account + "level",
            account_refused=account + "refused",
            address_refused=f"{cls.PREFIX}address-refused:{address}",
        )

    def all(self) -> list[str]:
        """The order every script takes them in."""
        return [
            self.address,
            self.pending,
            self.failures,
            self.lock,
            self.level,
            self.account_refused,
            self.address_refused,
        ]

    def of_account(self) -> list[str]:
        return [self.pending, self.failures, self.lock, self.level, self.account_refused]


@dataclass(frozen=True)
class Attempt:
    """A login admitted: its slot is held until it fails, succeeds or is released."""

    keys: Keys
    id: str


@dataclass(frozen=True)
class _Limits:
    address_window_ms: int
    address_limit: int
    account_window_ms: int
    account_limit: int
    lockout_seconds: int
    lockout_max_seconds: int
    lockout_memory_seconds: int

    @classmethod
    def of(cls, tuning: Tuning) -> _Limits:
        address, account = tuning.address_item, tuning.account_item
        return cls(
            address.get_expiry() * 1000,
            address.amount,
            account.get_expiry() * 1000,
            account.amount,
            tuning.lockout_seconds,
            tuning.lockout_max_seconds,
            tuning.lockout_memory_seconds,
        )


def _seconds(ms: float) -> int:
    return max(1, math.ceil(ms / 1000))


# Each result is a list [kind, ms, extra]: [0] admitted/ok, [1, ms, first] locked,
# [2, ms, level] lockout started (reported, and marks the period), [3, ms, first] address limited, [4] account
# window full of attempts in flight (not reported: no failure, no lockout), [5] the address's
# window full, not of failures alone (the same). "first": 1 when no
# refusal of this kind was reported in its period yet (a marker key that lives as long as the
# refusal holds).
_RESERVE = """
local now, pending_ms = tonumber(ARGV[1]), tonumber(ARGV[6])
local function first(marker, ms)
  if redis.call('SET', marker, '1', 'NX', 'PX', math.max(1, ms)) then return 1 end
  return 0
end
local lock = redis.call('PTTL', KEYS[4])
if lock ~= -2 then return {1, lock, first(KEYS[6], lock)} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local failed, oldest = 0, nil
  local members = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  for i = 1, #members, 2 do
    if string.sub(members[i], 1, 2) == 'f:' then
      failed = failed + 1
      if oldest == nil then oldest = tonumber(members[i + 1]) end
    end
  end
  if failed < tonumber(ARGV[3]) then return {5} end
  local ms = oldest - now
  return {3, ms, first(KEYS[7], ms)}
end
if redis.call('ZCARD', KEYS[2]) + redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[5]) then
  return {4}
end
redis.call('ZADD', KEYS[1], now + pending_ms, 'p:' .. ARGV[7])
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[2]), pending_ms))
redis.call('ZADD', KEYS[2], now + pending_ms, ARGV[7])
redis.call('PEXPIRE', KEYS[2], pending_ms)
return {0}
"""

_FAIL = """
local now, pending_ms = tonumber(ARGV[1]), tonumber(ARGV[8])
redis.call('ZREM', KEYS[1], 'p:' .. ARGV[9])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), 'f:' .. ARGV[9])
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[2]), pending_ms))
redis.call('ZREM', KEYS[2], ARGV[9])
local lock = redis.call('PTTL', KEYS[4])
if lock ~= -2 then return {1, lock} end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[9])
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[3]))
if redis.call('ZCARD', KEYS[3]) < tonumber(ARGV[4]) then return {0} end
local level = redis.call('INCR', KEYS[5])
if level == 1 then redis.call('EXPIRE', KEYS[5], ARGV[7]) end
local seconds = math.floor(math.min(tonumber(ARGV[5]) * 2 ^ (level - 1), tonumber(ARGV[6])))
redis.call('SET', KEYS[4], '1', 'EX', seconds)
redis.call('SET', KEYS[6], '1', 'EX', seconds)
redis.call('DEL', KEYS[3])
return {2, seconds * 1000, level}
"""

_SUCCEED = """
redis.call('ZREM', KEYS[1], 'p:' .. ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
local lock = redis.call('PTTL', KEYS[4])
if lock ~= -2 then return {1, lock} end
return {0}
"""

_RELEASE = """
redis.call('ZREM', KEYS[1], 'p:' .. ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return {0}
"""


class _Backend(Protocol):
    def run(self, script: str, keys: list[str], args: list[Any]) -> list[int]: ...
    def delete(self, keys: list[str]) -> int: ...


class _RedisBackend:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.scripts = {s: client.register_script(s) for s in (_RESERVE, _FAIL, _SUCCEED, _RELEASE)}

    def run(self, script: str, keys: list[str], args: list[Any]) -> list[int]:
        return [int(x) for x in self.scripts[script](keys=keys, args=args)]

    def delete(self, keys: list[str]) -> int:
        return int(self.client.delete(*keys))


class _MemoryBackend:
    """The four scripts in process memory, for when Redis is unreachable."""

    SWEEP_EVERY = 1000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sets: dict[str, dict[str, float]] = {}  # key -> member -> expiry (ms)
        self._values: dict[str, tuple[int, float]] = {}  # key -> (value, expiry ms)
        self._ops = 0

    def _set(self, key: str, now: float) -> dict[str, float]:
        found = self._sets.setdefault(key, {})
        for member in [m for m, expiry in found.items() if expiry <= now]:
            del found[member]
        return found

    def _value(self, key: str, now: float) -> tuple[int, float] | None:
        held = self._values.get(key)
        if held is not None and held[1] <= now:
            del self._values[key]
            return None
        return held

    def _sweep(self, now: float) -> None:
        for key in list(self._sets):
            if not self._set(key, now):
                del self._sets[key]
        for key in list(self._values):
            self._value(key, now)

    def run(self, script: str, keys: list[str], args: list[Any]) -> list[int]:
        now = time.time() * 1000
        with self._lock:
            self._ops += 1
            if self._ops % self.SWEEP_EVERY == 0:
                self._sweep(now)
            return self._run(script, keys, [str(a) for a in args], now)

    def _run(self, script: str, keys: list[str], args: list[str], now: float) -> list[int]:
        address, pending, failures, lock_key, level_key, account_refused, address_refused = (
            self._set(keys[0], now),
            *keys[1:],
        )
        lock = self._value(lock_key, now)

        def first(marker: str, ms: float) -> int:
            if self._value(marker, now) is not None:
                return 0
            self._values[marker] = (1, now + max(1, ms))
            return 1

        if script is _RESERVE:
            if lock is not None:
                return [1, int(lock[1] - now), first(account_refused, lock[1] - now)]
            if len(address) >= int(args[2]):
                failed = sorted(expiry for member, expiry in address.items() if member.startswith("f:"))
                if len(failed) < int(args[2]):
                    return [5]
                ms = failed[0] - now
                return [3, int(ms), first(address_refused, ms)]
            if len(self._set(pending, now)) + len(self._set(failures, now)) >= int(args[4]):
                return [4]
            address["p:" + args[6]] = now + int(args[5])
            self._set(pending, now)[args[6]] = now + int(args[5])
            return [0]
        member = args[-1] if script is not _SUCCEED else args[0]
        address.pop("p:" + member, None)
        self._set(pending, now).pop(member, None)
        if script is _RELEASE:
            return [0]
        if script is _FAIL:
            address["f:" + member] = now + int(args[1])
        if lock is not None:
            return [1, int(lock[1] - now)]
        if script is _SUCCEED:
            return [0]
        counted = self._set(failures, now)
        counted[member] = now + int(args[2])
        if len(counted) < int(args[3]):
            return [0]
        held = self._value(level_key, now)
        level = (held[0] if held else 0) + 1
        self._values[level_key] = (level, held[1] if held else now + int(args[6]) * 1000)
        seconds = int(min(int(args[4]) * 2.0 ** (level - 1), int(args[5])))
        self._values[lock_key] = (1, now + seconds * 1000)
        self._values[account_refused] = (1, now + seconds * 1000)  # this refusal is the one reported
        del self._sets[failures]
        return [2, seconds * 1000, level]

    def delete(self, keys: list[str]) -> int:
        with self._lock:
            found = [k for k in keys if self._sets.pop(k, None) is not None or self._values.pop(k, None) is not None]
        return len(found)


def _refusal(result: list[int]) -> Refusal | None:
    kind, ms, extra = (*result, 0, 0)[:3]
    if kind == 0:
        return None
    if kind == 1:  # from the reservation, extra says whether it is the first; else always reported
        return Refusal("account_locked", _seconds(ms), audit=len(result) < 3 or extra == 1)
    if kind == 2:
        return Refusal("account_locked", _seconds(ms), lockout_started=True, lockout_level=extra)
    if kind == 3:
        return Refusal("address_limited", _seconds(ms), audit=extra == 1)
    if kind == 4:  # the account's window: failures and attempts in flight, not failures alone
        return Refusal("account_busy", BUSY_RETRY_SECONDS, audit=False)
    return Refusal("address_busy", BUSY_RETRY_SECONDS, audit=False)  # 5: the same, for the address


class LoginThrottle:
    def __init__(self, tuning: Tuning, client: redis.Redis | None) -> None:
        self.limits = _Limits.of(tuning)
        self.memory: _Backend = _MemoryBackend()
        self.shared: _Backend | None = _RedisBackend(client) if client is not None else None
        self._redis_down_until = 0.0

    def _on(self, op: Callable[[_Backend], T]) -> T:
        if self.shared is not None and time.monotonic() >= self._redis_down_until:
            try:
                return op(self.shared)
            except redis.RedisError as exc:
                log.warning(
                    "login limits: Redis unavailable (%s); limiting per process for %.0f s",
                    type(exc).__name__,
                    REDIS_RETRY_SECONDS,
                )
                self._redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
        return op(self.memory)

    def _run(self, script: str, keys: Keys, args: list[Any]) -> Refusal | None:
        return _refusal(self._on(lambda backend: backend.run(script, keys.all(), args)))

    @property
    def degraded(self) -> bool:
        return self.shared is None or time.monotonic() < self._redis_down_until

    def admit(self, address: str, email: str) -> Attempt | Refusal:
        """Before any password is checked: the attempt's slot, or why there is none now.

        Answered at once. While the account's window is full only because of attempts in
        flight (parallel logins of one account: a pool of workers starting), the refusal is
        ``account_busy``: their verdicts decide whether there is room, and a request thread
        waiting for them would be one a flood of logins takes from every other route."""
        lim = self.limits
        attempt = Attempt(Keys.of(address, email), uuid.uuid4().hex)
        args: list[Any] = [
            int(time.time() * 1000),
            lim.address_window_ms,
            lim.address_limit,
            lim.account_window_ms,
            lim.account_limit,
            PENDING_SECONDS * 1000,
            attempt.id,
        ]
        refusal = self._run(_RESERVE, attempt.keys, args)
        return attempt if refusal is None else refusal

    def failed(self, attempt: Attempt) -> Refusal | None:
        """After a wrong password; a refusal when the account is (or just got) locked."""
        lim = self.limits
        return self._run(
            _FAIL,
            attempt.keys,
            [
                int(time.time() * 1000),
                lim.address_window_ms,
                lim.account_window_ms,
                lim.account_limit,
                lim.lockout_seconds,
                lim.lockout_max_seconds,
                lim.lockout_memory_seconds,
                PENDING_SECONDS * 1000,
                attempt.id,
            ],
        )

    def succeeded(self, attempt: Attempt) -> Refusal | None:
        """After a right password: a refusal when the account got locked meanwhile (no token
        then). The account's failures and its lockout doubling stay counted.

        The counts are per email, and an email may have a membership in several
        organisations, each with a password its own admin chose. If a success forgot the
        failures, any admin could reset the guesses aimed at another organisation's member by
        logging in as their own membership of the email; if it forgot them only when the email
        has one membership (the other choice), an admin would learn from the next failure
        whether the email is a member elsewhere. Forgetting by time alone depends on nothing
        the caller cannot see, and no admin can reset anyone's guesses."""
        return self._run(_SUCCEED, attempt.keys, [attempt.id])

    def release(self, attempt: Attempt) -> None:
        """The attempt ended without a verdict (503, an error): its slot is free again."""
        self._run(_RELEASE, attempt.keys, [attempt.id])

    def unlock(self, email: str) -> int:
        """Clear the account's lock, failures and doubling where this process counts; keys deleted."""
        keys = Keys.of("-", email).of_account()
        return self._on(lambda backend: backend.delete(keys))


def unlock_account(client: redis.Redis, email: str) -> int:
    """``ecomind users unlock``: clear the account's lock, failures and doubling in Redis, for
    every replica; keys deleted. Raises :class:`redis.RedisError` rather than fall back."""
    return _RedisBackend(client).delete(Keys.of("-", email).of_account())
