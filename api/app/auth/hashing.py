"""Password hashing: argon2id on a bounded pool of its own threads.

Passwords are argon2id with OWASP's first recommended setting (m=19 MiB, t=2, p=1).
In the API, hashing runs on :class:`PasswordHashing`'s own small thread pool: at most
``ECOMIND_HASH_WORKERS`` hashes at once, so parallel logins cannot take the process
past ``workers x 19 MiB`` of argon2 memory (docs/security.md has the budget), and
only those threads ever allocate argon2's memory, so freed blocks are reused by the
next hash instead of lingering in a malloc arena per server thread.
"""

from __future__ import annotations

import base64
import hmac
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from argon2 import Parameters, PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.low_level import hash_secret_raw

__all__ = [
    "ARGON2_MEMORY_KIB",
    "HashingBusy",
    "PasswordHashing",
    "hash_password",
    "memory_budget_mib",
    "salt_of",
    "shared_salt",
]

# OWASP Password Storage Cheat Sheet, argon2id, first option: m=19 MiB, t=2, p=1.
# argon2-cffi's default (RFC 9106 low-memory: 64 MiB, t=3, p=4) cost 64 MiB and four
# threads per hash; hashes made with it are upgraded at the next successful login.
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1
_hasher = PasswordHasher(
    time_cost=ARGON2_TIME_COST, memory_cost=ARGON2_MEMORY_KIB, parallelism=ARGON2_PARALLELISM, type=Type.ID
)


# What one idle API process holds resident (Python, FastAPI, SQLAlchemy, boto3, zxcvbn's
# word lists, pools), measured by bench/login_abuse.py, rounded up with headroom.
IDLE_PROCESS_MIB = 160


def memory_budget_mib(hash_workers: int) -> int:
    """The resident memory one API process stays under, however many logins arrive at once.

    Idle process, plus each hashing worker's argon2 block (19 MiB) counted twice: glibc
    may keep a freed block cached in the worker's arena while the next one is allocated.
    """
    return IDLE_PROCESS_MIB + hash_workers * 2 * (ARGON2_MEMORY_KIB // 1024)


def hash_password(password: str, salt: bytes | None = None) -> str:
    """argon2id of ``password``; ``salt`` (see :func:`shared_salt`) or a fresh one."""
    return _hasher.hash(password, salt=salt)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@dataclass(frozen=True)
class _Stored:
    """One argon2 hash, parsed: what must be computed (parameters and salt) and its result."""

    group: tuple[str, bytes]  # ("$argon2id$v=19$m=...,t=...,p=...", salt)
    digest: bytes
    parameters: Parameters


def _b64(segment: str) -> bytes:
    return base64.b64decode(segment + "=" * (-len(segment) % 4), validate=True)


def _parse(password_hash: str) -> _Stored | None:
    try:
        parameters = extract_parameters(password_hash)
        head, salt, digest = password_hash.rsplit("$", 2)
        return _Stored((head, _b64(salt)), _b64(digest), parameters)
    except (InvalidHashError, ValueError):
        return None


def salt_of(password_hash: str) -> bytes | None:
    stored = _parse(password_hash)
    return stored.group[1] if stored else None


def shared_salt(hashes: Iterable[str]) -> bytes | None:
    """The salt every membership of one email should use: that of the earliest hash (give them
    in creation order) made with the current parameters; ``None`` when there is none yet.

    Memberships of an email sharing one salt and one set of parameters cost one argon2
    computation per login together (:func:`check_passwords`), so the time a login takes
    does not tell how many organisations the email belongs to."""
    for password_hash in hashes:
        if not needs_rehash(password_hash):
            return salt_of(password_hash)
    return None


def check_passwords(hashes: Sequence[str], password: str) -> list[bool]:
    """Which of ``hashes`` ``password`` matches, with one argon2 computation per distinct
    salt and parameters (hashes of one email share them: :func:`shared_salt`)."""
    return _check(hashes, password)[0]


def _check(hashes: Sequence[str], password: str) -> tuple[list[bool], int]:
    """:func:`check_passwords`, and how many argon2 computations it took."""
    secret = password.encode()
    computed: dict[tuple[str, bytes], bytes] = {}
    matches = []
    for stored in map(_parse, hashes):
        if stored is None:
            matches.append(False)
            continue
        raw = computed.get(stored.group)
        if raw is None:
            p = stored.parameters
            raw = hash_secret_raw(
                secret, stored.group[1], p.time_cost, p.memory_cost, p.parallelism, p.hash_len, p.type, p.version
            )
            computed[stored.group] = raw
        matches.append(hmac.compare_digest(raw, stored.digest))
    return matches, len(computed)


class HashingBusy(RuntimeError):
    """More password checks are waiting than the queue holds; the caller should retry."""


class PasswordHashing:
    """argon2 on ``workers`` threads of its own, at most ``workers + queue`` callers at once.

    Callers block until their hash is done; one beyond the bound gets
    :class:`HashingBusy` at once instead of growing the queue.
    """

    def __init__(self, workers: int, queue: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2")
        self._admitted = threading.BoundedSemaphore(workers + queue)
        self._dummy: str | None = None
        # argon2 computations made to check passwords: what a login costs, whoever it names.
        self.checks_computed = 0

    def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if not self._admitted.acquire(blocking=False):
            raise HashingBusy("too many password checks are waiting")
        try:
            return self._pool.submit(fn, *args).result()
        finally:
            self._admitted.release()

    def hash(self, password: str, salt: bytes | None = None) -> str:
        return str(self._run(hash_password, password, salt))

    def verify(self, password_hash: str, password: str) -> bool:
        return bool(self._run(verify_password, password_hash, password))

    def check(self, hashes: Sequence[str], password: str) -> list[bool]:
        """:func:`check_passwords` on the pool; without hashes (an unknown email), the cost of
        one computation all the same, so the time taken does not tell whether the email exists."""
        if not hashes:
            if self._dummy is None:
                self._dummy = self.hash("not-a-user-password")
            self.checks_computed += self._run(_check, [self._dummy], password)[1]
            return []
        matches, computed = self._run(_check, list(hashes), password)
        self.checks_computed += computed
        return list(matches)

    @staticmethod
    def needs_rehash(password_hash: str) -> bool:
        return needs_rehash(password_hash)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
