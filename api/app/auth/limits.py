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
The attempt then becomes a failure (:meth:`~LoginThrottle.failed`) or is given back
(:meth:`~LoginThrottle.succeeded`, :meth:`~LoginThrottle.release`); a success is
refused when the account got locked while its password was being checked. An
attempt whose process died is forgotten after ``PENDING_SECONDS``.
A login refused only because attempts still in flight fill the account's window, or the
address's, is refused at once (``account_busy``, ``address_busy``, ``Retry-After: 1``),
never after a wait in its request thread: it is no failure and no lockout, and its retry
finds the slots given back by the attempts that succeeded.

Only failures stay counted, so users behind one address (an office, a NAT) who type
their password right never add to its count; they are refused while others' failures
fill it, and, for a moment, while logins in flight fill a window. Unknown emails are counted and locked
exactly like known ones, so a lockout tells nothing about whether an account exists.

When Redis is unreachable the same rules run in process memory: logins keep
working, limits hold per process instead of per fleet, and Redis is tried again
after a few seconds.

The keys (``ecomind:login:...``, built by :class:`Keys` only) name a digest of the
email, never the email.

One job, over 400 lines on purpose: the Redis scripts, their in-process twin and the
throttle that runs them are one definition of the rules (the scripts' arguments generate
both sides); apart, a change to one side could miss the other.
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, NamedTuple, Protocol, TypeVar, get_type_hints

import redis

from app.settings.knobs import Tuning

__all__ = [
    "FAIL_SCRIPT",
    "RELEASE_SCRIPT",
    "RESERVE_SCRIPT",
    "SUCCEED_SCRIPT",
    "Attempt",
    "AttemptArgs",
    "FailArgs",
    "Keys",
    "LoginThrottle",
    "Refusal",
    "ReserveArgs",
    "Verdict",
    "unlock_account",
]

log = logging.getLogger("app.auth.limits")

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
        """``email`` as app.auth.emails normalises it (the login's model, ``users unlock``)."""
        # Keys name no email: Redis is not where a list of our users should leak from.
        return hashlib.sha256(email.encode()).hexdigest()[:32]

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
        """The order every script takes them in (its KEYS): the order of the fields."""
        return [getattr(self, f.name) for f in fields(self)]

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


class Verdict(enum.IntEnum):
    """The first item of what a script returns, ``[verdict, ms, extra]``; the Lua scripts and
    their in-memory twin both answer with these. ``extra`` is "first" (1 when no refusal of
    this kind was reported in its period yet: a marker key that lives as long as the refusal
    holds) or a lockout's level."""

    OK = 0  # admitted, or nothing to refuse
    LOCKED = 1  # ms: the lock's time left; from a reservation, extra: first
    LOCKOUT_STARTED = 2  # ms: the lockout; extra: its level (reported, and marks the period)
    ADDRESS_LIMITED = 3  # ms: until the address's oldest entry leaves its window; extra: first
    # The account's window is full of attempts in flight (not reported: no failure, no lockout).
    BUSY = 4
    # The address's window is full, not of failures alone (the same).
    ADDRESS_BUSY = 5


class ReserveArgs(NamedTuple):
    now_ms: int
    address_window_ms: int
    address_limit: int
    account_limit: int
    pending_ms: int
    attempt: str


class FailArgs(NamedTuple):
    now_ms: int
    address_window_ms: int
    account_window_ms: int
    account_limit: int
    lockout_seconds: int
    lockout_max_seconds: int
    lockout_memory_seconds: int
    pending_ms: int
    attempt: str


class AttemptArgs(NamedTuple):
    """A success or a release: the attempt only."""

    attempt: str


def _script(args: type[tuple[Any, ...]], body: str) -> str:
    """A Lua script whose KEYS, ARGV and verdicts have their Python names: ``key.lock``
    (:class:`Keys`), ``args.now_ms`` (the NamedTuple ``args``: numbers as numbers), ``verdict.locked``."""
    hints = get_type_hints(args)
    keys = ", ".join(f"{f.name} = KEYS[{i}]" for i, f in enumerate(fields(Keys), 1))
    argv = ", ".join(
        f"{name} = tonumber(ARGV[{i}])" if hints[name] is int else f"{name} = ARGV[{i}]"
        for i, name in enumerate(hints, 1)
    )
    verdicts = ", ".join(f"{v.name.lower()} = {v.value}" for v in Verdict)
    return f"local key = {{{keys}}}\nlocal args = {{{argv}}}\nlocal verdict = {{{verdicts}}}\n{body}"


RESERVE_SCRIPT = _script(
    ReserveArgs,
    """
local now, pending_ms = args.now_ms, args.pending_ms
local function first(marker, ms)
  if redis.call('SET', marker, '1', 'NX', 'PX', math.max(1, ms)) then return 1 end
  return 0
end
local lock = redis.call('PTTL', key.lock)
if lock ~= -2 then return {verdict.locked, lock, first(key.account_refused, lock)} end
redis.call('ZREMRANGEBYSCORE', key.address, '-inf', now)
redis.call('ZREMRANGEBYSCORE', key.pending, '-inf', now)
redis.call('ZREMRANGEBYSCORE', key.failures, '-inf', now)
if redis.call('ZCARD', key.address) >= args.address_limit then
  local failed, oldest = 0, nil
  local members = redis.call('ZRANGE', key.address, 0, -1, 'WITHSCORES')
  for i = 1, #members, 2 do
    if string.sub(members[i], 1, 2) == 'f:' then
      failed = failed + 1
      if oldest == nil then oldest = tonumber(members[i + 1]) end
    end
  end
  if failed < args.address_limit then return {verdict.address_busy} end
  local ms = oldest - now
  return {verdict.address_limited, ms, first(key.address_refused, ms)}
end
if redis.call('ZCARD', key.pending) + redis.call('ZCARD', key.failures) >= args.account_limit then
  return {verdict.busy}
end
redis.call('ZADD', key.address, now + pending_ms, 'p:' .. args.attempt)
redis.call('PEXPIRE', key.address, math.max(args.address_window_ms, pending_ms))
redis.call('ZADD', key.pending, now + pending_ms, args.attempt)
redis.call('PEXPIRE', key.pending, pending_ms)
return {verdict.ok}
""",
)

FAIL_SCRIPT = _script(
    FailArgs,
    """
local now, pending_ms = args.now_ms, args.pending_ms
redis.call('ZREM', key.address, 'p:' .. args.attempt)
redis.call('ZADD', key.address, now + args.address_window_ms, 'f:' .. args.attempt)
redis.call('PEXPIRE', key.address, math.max(args.address_window_ms, pending_ms))
redis.call('ZREM', key.pending, args.attempt)
local lock = redis.call('PTTL', key.lock)
if lock ~= -2 then return {verdict.locked, lock} end
redis.call('ZREMRANGEBYSCORE', key.failures, '-inf', now)
redis.call('ZADD', key.failures, now + args.account_window_ms, args.attempt)
redis.call('PEXPIRE', key.failures, args.account_window_ms)
if redis.call('ZCARD', key.failures) < args.account_limit then return {verdict.ok} end
local level = redis.call('INCR', key.level)
if level == 1 then redis.call('EXPIRE', key.level, args.lockout_memory_seconds) end
local seconds = math.floor(math.min(args.lockout_seconds * 2 ^ (level - 1), args.lockout_max_seconds))
redis.call('SET', key.lock, '1', 'EX', seconds)
redis.call('SET', key.account_refused, '1', 'EX', seconds)
redis.call('DEL', key.failures)
return {verdict.lockout_started, seconds * 1000, level}
""",
)

SUCCEED_SCRIPT = _script(
    AttemptArgs,
    """
redis.call('ZREM', key.address, 'p:' .. args.attempt)
redis.call('ZREM', key.pending, args.attempt)
local lock = redis.call('PTTL', key.lock)
if lock ~= -2 then return {verdict.locked, lock} end
return {verdict.ok}
""",
)

RELEASE_SCRIPT = _script(
    AttemptArgs,
    """
redis.call('ZREM', key.address, 'p:' .. args.attempt)
redis.call('ZREM', key.pending, args.attempt)
return {verdict.ok}
""",
)


class _Backend(Protocol):
    def run(self, script: str, keys: list[str], args: tuple[Any, ...]) -> list[int]: ...
    def delete(self, keys: list[str]) -> int: ...


class _RedisBackend:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.scripts = {
            s: client.register_script(s) for s in (RESERVE_SCRIPT, FAIL_SCRIPT, SUCCEED_SCRIPT, RELEASE_SCRIPT)
        }

    def run(self, script: str, keys: list[str], args: tuple[Any, ...]) -> list[int]:
        return [int(x) for x in self.scripts[script](keys=keys, args=list(args))]

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

    def run(self, script: str, keys: list[str], args: tuple[Any, ...]) -> list[int]:
        now = time.time() * 1000
        with self._lock:
            self._ops += 1
            if self._ops % self.SWEEP_EVERY == 0:
                self._sweep(now)
            return self._run(script, Keys(*keys), args, now)

    def _run(self, script: str, key: Keys, args: Any, now: float) -> list[int]:
        address = self._set(key.address, now)
        lock = self._value(key.lock, now)

        def first(marker: str, ms: float) -> int:
            if self._value(marker, now) is not None:
                return 0
            self._values[marker] = (1, now + max(1, ms))
            return 1

        if script is RESERVE_SCRIPT:
            if lock is not None:
                return [Verdict.LOCKED, int(lock[1] - now), first(key.account_refused, lock[1] - now)]
            if len(address) >= args.address_limit:
                failed = sorted(expiry for member, expiry in address.items() if member.startswith("f:"))
                if len(failed) < args.address_limit:
                    return [Verdict.ADDRESS_BUSY]
                ms = failed[0] - now
                return [Verdict.ADDRESS_LIMITED, int(ms), first(key.address_refused, ms)]
            if len(self._set(key.pending, now)) + len(self._set(key.failures, now)) >= args.account_limit:
                return [Verdict.BUSY]
            address["p:" + args.attempt] = now + args.pending_ms
            self._set(key.pending, now)[args.attempt] = now + args.pending_ms
            return [Verdict.OK]
        member = args.attempt
        address.pop("p:" + member, None)
        self._set(key.pending, now).pop(member, None)
        if script is RELEASE_SCRIPT:
            return [Verdict.OK]
        if script is FAIL_SCRIPT:
            address["f:" + member] = now + args.address_window_ms
        if lock is not None:
            return [Verdict.LOCKED, int(lock[1] - now)]
        if script is SUCCEED_SCRIPT:
            return [Verdict.OK]
        counted = self._set(key.failures, now)
        counted[member] = now + args.account_window_ms
        if len(counted) < args.account_limit:
            return [Verdict.OK]
        held = self._value(key.level, now)
        level = (held[0] if held else 0) + 1
        self._values[key.level] = (level, held[1] if held else now + args.lockout_memory_seconds * 1000)
        seconds = int(min(args.lockout_seconds * 2.0 ** (level - 1), args.lockout_max_seconds))
        self._values[key.lock] = (1, now + seconds * 1000)
        self._values[key.account_refused] = (1, now + seconds * 1000)  # this refusal is the one reported
        del self._sets[key.failures]
        return [Verdict.LOCKOUT_STARTED, seconds * 1000, level]

    def delete(self, keys: list[str]) -> int:
        with self._lock:
            found = [k for k in keys if self._sets.pop(k, None) is not None or self._values.pop(k, None) is not None]
        return len(found)


def _refusal(result: list[int]) -> Refusal | None:
    kind, ms, extra = (*result, 0, 0)[:3]
    verdict = Verdict(kind)
    if verdict is Verdict.OK:
        return None
    if verdict is Verdict.LOCKED:  # from the reservation, extra says whether it is the first; else always reported
        return Refusal("account_locked", _seconds(ms), audit=len(result) < 3 or extra == 1)
    if verdict is Verdict.LOCKOUT_STARTED:
        return Refusal("account_locked", _seconds(ms), lockout_started=True, lockout_level=extra)
    if verdict is Verdict.ADDRESS_LIMITED:
        return Refusal("address_limited", _seconds(ms), audit=extra == 1)
    if verdict is Verdict.BUSY:  # the account's window: failures and attempts in flight, not failures alone
        return Refusal("account_busy", BUSY_RETRY_SECONDS, audit=False)
    return Refusal("address_busy", BUSY_RETRY_SECONDS, audit=False)  # the same, for the address


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

    def _run(self, script: str, keys: Keys, args: tuple[Any, ...]) -> Refusal | None:
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
        args = ReserveArgs(
            now_ms=int(time.time() * 1000),
            address_window_ms=lim.address_window_ms,
            address_limit=lim.address_limit,
            account_limit=lim.account_limit,
            pending_ms=PENDING_SECONDS * 1000,
            attempt=attempt.id,
        )
        refusal = self._run(RESERVE_SCRIPT, attempt.keys, args)
        return attempt if refusal is None else refusal

    def failed(self, attempt: Attempt) -> Refusal | None:
        """After a wrong password; a refusal when the account is (or just got) locked."""
        lim = self.limits
        return self._run(
            FAIL_SCRIPT,
            attempt.keys,
            FailArgs(
                now_ms=int(time.time() * 1000),
                address_window_ms=lim.address_window_ms,
                account_window_ms=lim.account_window_ms,
                account_limit=lim.account_limit,
                lockout_seconds=lim.lockout_seconds,
                lockout_max_seconds=lim.lockout_max_seconds,
                lockout_memory_seconds=lim.lockout_memory_seconds,
                pending_ms=PENDING_SECONDS * 1000,
                attempt=attempt.id,
            ),
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
        return self._run(SUCCEED_SCRIPT, attempt.keys, AttemptArgs(attempt.id))

    def release(self, attempt: Attempt) -> None:
        """The attempt ended without a verdict (503, an error): its slot is free again."""
        self._run(RELEASE_SCRIPT, attempt.keys, AttemptArgs(attempt.id))

    def unlock(self, email: str) -> int:
        """Clear the account's lock, failures and doubling where this process counts; keys deleted."""
        keys = Keys.of("-", email).of_account()
        return self._on(lambda backend: backend.delete(keys))


def unlock_account(client: redis.Redis, email: str) -> int:
    """``ecomind users unlock``: clear the account's lock, failures and doubling in Redis, for
    every replica; keys deleted. Raises :class:`redis.RedisError` rather than fall back."""
    return _RedisBackend(client).delete(Keys.of("-", email).of_account())
