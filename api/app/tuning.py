"""The API's abuse limits: each knob once, read from the process environment with a default.

These are operational limits, not secrets, so they live outside ``Settings``: an
operator tunes them per deployment without touching the secret layer. Every knob,
its default and how to tune it is in docs/security.md; a test reads that table
against :data:`KNOBS`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields

from limits import RateLimitItem, parse, parse_many

from .telemetry import METRICS_PORT, STALE_AFTER_TTLS

__all__ = ["KNOBS", "PROBE_THREADS", "Tuning", "TuningError", "memory_budget_mib"]


# Of the request threads (ECOMIND_REQUEST_THREADS), logins waiting for or running a hash hold
# one each, and this many must stay free for the other routes.
SPARE_THREADS = 8
# Threads of their own for /ready's checks: a flood that holds every request thread does not
# make the readiness probe wait behind it.
PROBE_THREADS = 2
# PostgreSQL's connections at most one API process opens (its default max_connections is 100).
MAX_REQUEST_THREADS = 200
MAX_HASH_WORKERS = 16
# A disabled or deleted user's tokens work at most this long in one process (its user cache).
MAX_USER_CACHE_SECONDS = 300
# NIST SP 800-63B's minimum length for a memorised secret; the API takes at most 1024.
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024


class TuningError(ValueError):
    """An ``ECOMIND_*`` limit holds a value we cannot use; the message names it."""


@dataclass(frozen=True)
class Tuning:
    # Requests: every route, with or without a token.
    max_body_bytes: int = 1024 * 1024
    # The threads that run the routes (anyio's thread limiter, which FastAPI's sync routes share).
    # The database pool is sized from it (:attr:`db_pool_connections`): a request thread never
    # waits for a connection, so the two cannot disagree.
    request_threads: int = 40
    # Connections (app/serving.py): a request's headers must arrive within this many seconds, its
    # body within this many more (then 408), and at most this many connections are open at once
    # (the one stalled longest, waiting for headers or a body, makes room).
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1000
    # Logins: failures per client address and per account, then a lockout that doubles.
    login_failures_per_address: str = "30/10 minutes"
    login_failures_per_account: str = "5/15 minutes"
    lockout_seconds: int = 60
    lockout_max_seconds: int = 3600
    lockout_memory_seconds: int = 86400
    # Password hashing: at most this many argon2 computations at once, and this many callers
    # waiting; beyond that a 503. Kept well under the server's 40 request threads (anyio's
    # default) so a flood of logins cannot take every thread from the other routes.
    hash_workers: int = 2
    hash_queue: int = 16
    # Passwords: length and zxcvbn score (0-4) a new password needs.
    password_min_length: int = 12
    password_min_score: int = 3
    # Tokens: how long a user's "exists and is enabled" answer is cached per process.
    user_cache_seconds: float = 5.0
    # Revocations: how often Redis's copy is rebuilt from PostgreSQL at the latest.
    revocation_resync_seconds: int = 300
    # Retry-After sent with a 503 when PostgreSQL is unavailable.
    unavailable_retry_after: int = 5
    # PostgreSQL that does not answer: seconds to connect (libpq, at least 2), for one statement
    # (the server's statement_timeout; 0: the server's setting), and to wait for a pooled connection.
    db_connect_timeout: int = 5
    db_statement_timeout: float = 15.0
    db_pool_timeout: float = 10.0
    # Observability (docs/operations.md): the Prometheus listener, on its own port, never the
    # public one; "off" starts none.
    metrics: str = "on"
    metrics_host: str = "127.0.0.1"
    metrics_port: int = METRICS_PORT
    # Its connections: each closed this many seconds after it opened, and at most this many at once.
    metrics_timeout: float = 10.0
    metrics_max_connections: int = 16
    # Seconds between Embedded Metric Format lines on stdout (CloudWatch alarms); 0: none.
    emf_interval: float = 0.0
    # A secret is stale when not refreshed for this long; 0: STALE_AFTER_TTLS x SECRETS_CACHE_TTL.
    secrets_stale_after: float = 0.0
    # What /ready does about a stale secret: "report" it (200) or "fail" (503).
    ready_on_stale: str = "report"
    # The API's log lines: "text", or "json" (one object per line, with the request id).
    log_format: str = "text"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Tuning:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        problems: list[str] = []
        for field in fields(cls):
            name = KNOBS[field.name]
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                continue
            kind = type(getattr(cls, field.name))
            try:
                values[field.name] = kind(raw.strip())
            except ValueError:
                problems.append(f"{name}={raw!r} is not {'a number' if kind is not str else 'valid'}")
                continue
            if kind is float and not math.isfinite(values[field.name]):  # type: ignore[arg-type]
                problems.append(f"{name}={raw!r} is not a finite number")
                del values[field.name]
        tuning = cls(**values)  # type: ignore[arg-type]
        problems += tuning._problems()
        if problems:
            raise TuningError("; ".join(problems))
        return tuning

    def _problems(self) -> list[str]:
        found = []
        for attr in ("login_failures_per_address", "login_failures_per_account"):
            try:
                rates = parse_many(getattr(self, attr))
            except ValueError:
                found.append(f"{KNOBS[attr]} must look like '5/15 minutes'")
                continue
            if len(rates) != 1:
                found.append(f"{KNOBS[attr]} must be one rate, like '5/15 minutes' (several are not supported)")
            elif rates[0].amount < 1:
                found.append(f"{KNOBS[attr]} must allow at least 1 failure per window")
            elif re.search(r"/\s*0+\s*[a-z]", getattr(self, attr)):  # limits reads "5/0 minutes" as one minute
                found.append(f"{KNOBS[attr]} must have a window of at least 1 (e.g. '5/15 minutes')")
        if self.lockout_max_seconds < self.lockout_seconds:
            found.append(
                f"{KNOBS['lockout_max_seconds']} ({self.lockout_max_seconds}) must not be below "
                f"{KNOBS['lockout_seconds']} ({self.lockout_seconds})"
            )
        if self.hash_workers > MAX_HASH_WORKERS:
            found.append(
                f"{KNOBS['hash_workers']}={self.hash_workers} would need a memory budget of "
                f"{memory_budget_mib(self)} MiB; at most {MAX_HASH_WORKERS} (more workers than cores buy nothing)"
            )
        if not 1 <= self.request_threads <= MAX_REQUEST_THREADS:
            found.append(
                f"{KNOBS['request_threads']} must be 1 to {MAX_REQUEST_THREADS} (each may hold one PostgreSQL "
                "connection)"
            )
        elif self.hash_workers + self.hash_queue > self.request_threads - SPARE_THREADS:
            found.append(
                f"{KNOBS['hash_workers']} + {KNOBS['hash_queue']} ({self.hash_workers} + {self.hash_queue}) must be at "
                f"most {self.request_threads - SPARE_THREADS}: each holds one of the server's {self.request_threads} "
                f"request threads ({KNOBS['request_threads']}), and {SPARE_THREADS} must stay for the other routes"
            )
        if not MIN_PASSWORD_LENGTH <= self.password_min_length <= MAX_PASSWORD_LENGTH:
            found.append(
                f"{KNOBS['password_min_length']} must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} "
                "(NIST's minimum; the longest password the API takes)"
            )
        positive = (
            "max_body_bytes",
            "header_timeout",
            "body_timeout",
            "max_connections",
            "lockout_seconds",
            "lockout_max_seconds",
            "lockout_memory_seconds",
            "hash_workers",
            "revocation_resync_seconds",
            "unavailable_retry_after",
            "metrics_timeout",
            "metrics_max_connections",
        )
        for attr in positive:
            if getattr(self, attr) <= 0:
                found.append(f"{KNOBS[attr]} must be above 0")
        for attr in ("hash_queue", "user_cache_seconds"):
            if getattr(self, attr) < 0:
                found.append(f"{KNOBS[attr]} must not be negative")
        if self.user_cache_seconds > MAX_USER_CACHE_SECONDS:
            found.append(
                f"{KNOBS['user_cache_seconds']} must be at most {MAX_USER_CACHE_SECONDS}: a disabled or deleted "
                "user's tokens keep working that long"
            )
        choices = {"metrics": ("on", "off"), "ready_on_stale": ("report", "fail"), "log_format": ("text", "json")}
        for attr, allowed in choices.items():
            if getattr(self, attr) not in allowed:
                found.append(f"{KNOBS[attr]} must be {' or '.join(allowed)}")
        if not 0 <= self.metrics_port <= 65535:
            found.append(f"{KNOBS['metrics_port']} must be a port, 1 to 65535 (0: any free port)")
        for attr, zero in (("emf_interval", "off"), ("secrets_stale_after", "the default")):
            if getattr(self, attr) < 0:
                found.append(f"{KNOBS[attr]} must not be negative (0: {zero})")
        if self.db_connect_timeout < 2:
            found.append(f"{KNOBS['db_connect_timeout']} must be at least 2 (libpq's minimum)")
        if self.db_statement_timeout < 0:
            found.append(f"{KNOBS['db_statement_timeout']} must not be negative (0: the server's setting)")
        if self.db_pool_timeout <= 0:
            found.append(f"{KNOBS['db_pool_timeout']} must be above 0")
        if not 0 <= self.password_min_score <= 4:
            found.append(f"{KNOBS['password_min_score']} must be 0 to 4 (zxcvbn's scale)")
        return found

    @property
    def db_pool_connections(self) -> int:
        """PostgreSQL connections one API process may hold: one per request thread, and one per
        probe thread of /ready. A request holds at most one at a time, so none ever waits."""
        return self.request_threads + PROBE_THREADS

    def stale_after(self, ttl: float) -> float:
        """Seconds without a successful refresh after which a secret is stale."""
        return self.secrets_stale_after or STALE_AFTER_TTLS * ttl

    @property
    def address_item(self) -> RateLimitItem:
        return parse(self.login_failures_per_address)

    @property
    def account_item(self) -> RateLimitItem:
        return parse(self.login_failures_per_account)


KNOBS: dict[str, str] = {f.name: "ECOMIND_" + f.name.upper() for f in fields(Tuning)}


# What one idle API process holds resident (Python, FastAPI, SQLAlchemy, boto3, zxcvbn's
# word lists, pools), measured by bench/login_abuse.py, rounded up with headroom.
IDLE_PROCESS_MIB = 160


def memory_budget_mib(tuning: Tuning) -> int:
    """The resident memory one API process stays under, however many logins arrive at once.

    Idle process, plus each hashing worker's argon2 block (19 MiB) counted twice: glibc
    may keep a freed block cached in the worker's arena while the next one is allocated.
    """
    from .security import ARGON2_MEMORY_KIB

    return IDLE_PROCESS_MIB + tuning.hash_workers * 2 * (ARGON2_MEMORY_KIB // 1024)
