"""The API's operational knobs (``ECOMIND_*``): each once, with its default and its range.

These are operational limits, not secrets, so they live outside ``Settings``: an
operator tunes them per deployment without touching the secret layer. :class:`Tuning`
is a pydantic-settings model: a field's default, type and constraints are the knob's
whole definition, its variable is ``ECOMIND_`` + the field's name in capitals, and a value
the constraints refuse is one line naming the variable (:class:`TuningError`; the API
exits 3 on it). Every knob, its default and how to tune it is in docs/security.md and
docs/operations.md; a test reads those tables against :data:`KNOBS`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from annotated_types import Ge, Gt, Le
from limits import RateLimitItem, parse, parse_many
from pydantic import AfterValidator, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from app.telemetry import METRICS_PORT, STALE_AFTER_TTLS

__all__ = ["KNOBS", "PROBE_THREADS", "Tuning", "TuningError"]


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
# A deadline of a connection (headers, body, a metrics scrape) longer than an hour protects nothing:
# a stalled client would hold its slot that long.
MAX_TIMEOUT_SECONDS = 3600


class TuningError(ValueError):
    """An ``ECOMIND_*`` limit holds a value we cannot use; the message names it."""


def _one_rate(text: str) -> str:
    """A login limit: one rate, at least one failure in a window of at least one unit."""
    try:
        rates = parse_many(text)
    except ValueError:
        raise ValueError("must look like '5/15 minutes'") from None
    if len(rates) != 1:
        raise ValueError("must be one rate, like '5/15 minutes' (several are not supported)")
    if rates[0].amount < 1:
        raise ValueError("must allow at least 1 failure per window")
    if re.search(r"/\s*0+\s*[a-z]", text):  # limits reads "5/0 minutes" as one minute
        raise ValueError("must have a window of at least 1 (e.g. '5/15 minutes')")
    return text


Rate = Annotated[str, AfterValidator(_one_rate)]


def _knob(default: Any, why: str | None = None, **constraints: Any) -> Any:
    """A knob's default and constraints; ``why`` ends the line that refuses a value outside them."""
    return Field(default, json_schema_extra={"why": why} if why else None, **constraints)


class Tuning(BaseSettings):
    """The knobs. ``Tuning()`` is the shipped defaults (and what is passed); the process
    environment is read by :meth:`from_env` only, so a test's or a bench's tuning never
    depends on the shell it runs in."""

    model_config = SettingsConfigDict(env_prefix="ECOMIND_", frozen=True, extra="forbid", allow_inf_nan=False)

    # Requests: every route, with or without a token.
    max_body_bytes: int = _knob(1024 * 1024, gt=0)
    # The threads that run the routes (anyio's thread limiter, which FastAPI's sync routes share).
    # The database pool is sized from it (:attr:`db_pool_connections`): a request thread never
    # waits for a connection, so the two cannot disagree.
    request_threads: int = _knob(40, "each may hold one PostgreSQL connection", ge=1, le=MAX_REQUEST_THREADS)
    # Connections (app/api/serving.py): a request's headers must arrive within this many seconds, its
    # body within this many more (then 408), and at most this many connections are open at once
    # (the one stalled longest, waiting for headers or a body, makes room).
    header_timeout: float = _knob(10.0, gt=0, le=MAX_TIMEOUT_SECONDS)
    body_timeout: float = _knob(30.0, gt=0, le=MAX_TIMEOUT_SECONDS)
    max_connections: int = _knob(1000, gt=0)
    # Logins: failures per client address and per account, then a lockout that doubles.
    login_failures_per_address: Rate = "30/10 minutes"
    login_failures_per_account: Rate = "5/15 minutes"
    lockout_seconds: int = _knob(60, gt=0)
    lockout_max_seconds: int = _knob(3600, gt=0)
    lockout_memory_seconds: int = _knob(86400, gt=0)
    # Password hashing: at most this many argon2 computations at once, and this many callers
    # waiting; beyond that a 503. Kept well under the server's 40 request threads (anyio's
    # default) so a flood of logins cannot take every thread from the other routes.
    hash_workers: int = _knob(
        2,
        "each worker holds an argon2 block of its own, and more workers than cores buy nothing",
        ge=1,
        le=MAX_HASH_WORKERS,
    )
    hash_queue: int = _knob(16, ge=0)
    # Passwords: length and zxcvbn score (0-4) a new password needs.
    password_min_length: int = _knob(
        12, "NIST's minimum; the longest password the API takes", ge=MIN_PASSWORD_LENGTH, le=MAX_PASSWORD_LENGTH
    )
    password_min_score: int = _knob(3, "zxcvbn's scale", ge=0, le=4)
    # Tokens: how long a user's "exists and is enabled" answer is cached per process.
    user_cache_seconds: float = _knob(
        5.0, "a disabled or deleted user's tokens keep working that long", ge=0, le=MAX_USER_CACHE_SECONDS
    )
    # Revocations: how often Redis's copy is rebuilt from PostgreSQL at the latest.
    revocation_resync_seconds: int = _knob(300, gt=0)
    # Retry-After sent with a 503 when PostgreSQL is unavailable.
    unavailable_retry_after: int = _knob(5, gt=0)
    # PostgreSQL that does not answer: seconds to connect (libpq, at least 2), for one statement
    # (the server's statement_timeout; 0: the server's setting), and to wait for a pooled connection.
    db_connect_timeout: int = _knob(5, "libpq's minimum", ge=2)
    db_statement_timeout: float = _knob(15.0, "0: the server's setting", ge=0)
    db_pool_timeout: float = _knob(10.0, gt=0)
    # Observability (docs/operations.md): the Prometheus listener, on its own port, never the
    # public one; "off" starts none.
    metrics: Literal["on", "off"] = "on"
    metrics_host: str = "127.0.0.1"
    metrics_port: int = _knob(METRICS_PORT, "a port; 0: any free port", ge=0, le=65535)
    # Its connections: each closed this many seconds after it opened, and at most this many at once.
    metrics_timeout: float = _knob(10.0, gt=0, le=MAX_TIMEOUT_SECONDS)
    metrics_max_connections: int = _knob(16, gt=0)
    # Seconds between Embedded Metric Format lines on stdout (CloudWatch alarms); 0: none.
    emf_interval: float = _knob(0.0, "0: off", ge=0)
    # A secret is stale when not refreshed for this long; 0: STALE_AFTER_TTLS x SECRETS_CACHE_TTL.
    secrets_stale_after: float = _knob(0.0, "0: the default", ge=0)
    # What /ready does about a stale secret: "report" it (200) or "fail" (503).
    ready_on_stale: Literal["report", "fail"] = "report"
    # The API's log lines: "text", or "json" (one object per line, with the request id).
    log_format: Literal["text", "json"] = "text"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Constructing is defaults and arguments only; from_env() adds the environment it is given.
        return (init_settings,)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Tuning:
        """The knobs set in ``environ`` (the process environment by default); raises
        :class:`TuningError` naming every variable whose value cannot be used."""
        values = _Environ(cls, os.environ if environ is None else environ)()
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = [_problem(error) for error in exc.errors()]
            refused = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
            if refused:
                # The checks across knobs run on what remains, so every problem is said at once.
                try:
                    cls(**{k: v for k, v in values.items() if k not in refused})
                except ValidationError as more:
                    problems += [_problem(error) for error in more.errors() if not error["loc"]]
            raise TuningError("; ".join(problems)) from None

    @model_validator(mode="after")
    def _consistent(self) -> Tuning:
        found = []
        if self.lockout_max_seconds < self.lockout_seconds:
            found.append(
                f"{KNOBS['lockout_max_seconds']} ({self.lockout_max_seconds}) must not be below "
                f"{KNOBS['lockout_seconds']} ({self.lockout_seconds})"
            )
        if self.hash_workers + self.hash_queue > self.request_threads - SPARE_THREADS:
            found.append(
                f"{KNOBS['hash_workers']} + {KNOBS['hash_queue']} ({self.hash_workers} + {self.hash_queue}) must be at "
                f"most {self.request_threads - SPARE_THREADS}: each holds one of the server's {self.request_threads} "
                f"request threads ({KNOBS['request_threads']}), and {SPARE_THREADS} must stay for the other routes"
            )
        if found:
            raise ValueError("; ".join(found))
        return self

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


_PREFIX: str = Tuning.model_config["env_prefix"]
KNOBS: dict[str, str] = {name: _PREFIX + name.upper() for name in Tuning.model_fields}


class _Environ(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping: the exact ``ECOMIND_*``
    names only, blanks around a value dropped, a blank value unset."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        known = set(KNOBS.values())
        # Case-insensitive matching reads lower-cased names; only the exact spelling is a knob.
        return {k.lower(): v.strip() for k, v in self._environ.items() if k in known and v.strip()}


def _problem(error: ErrorDetails) -> str:
    """One knob's problem, in words: its variable, and what its value must be (never pydantic's text)."""
    if not error["loc"]:
        return str(error.get("ctx", {}).get("error", error["msg"]))  # across knobs: the message names them
    attr = str(error["loc"][0])
    name = KNOBS[attr]
    kind = error["type"]
    if kind == "value_error":
        return f"{name} {error.get('ctx', {}).get('error', error['msg'])}"
    if kind == "literal_error":
        return f"{name} must be {' or '.join(_choices(attr))}"
    if kind in ("greater_than", "greater_than_equal", "less_than_equal"):
        return f"{name} must {_range(attr)}"
    if kind == "finite_number":
        return f"{name}={error['input']!r} is not a finite number"
    return f"{name}={error['input']!r} is not a number"


def _choices(attr: str) -> tuple[str, ...]:
    return tuple(str(choice) for choice in Tuning.model_fields[attr].annotation.__args__)  # type: ignore[union-attr]


def _range(attr: str) -> str:
    """What the knob's constraints allow, said once for every bound it may break."""
    field = Tuning.model_fields[attr]
    low = next((m for m in field.metadata if isinstance(m, Ge | Gt)), None)
    high = next((m.le for m in field.metadata if isinstance(m, Le)), None)
    extra = field.json_schema_extra
    why = f" ({extra['why']})" if isinstance(extra, dict) and extra.get("why") else ""
    if isinstance(low, Ge) and high is not None:
        return f"be {low.ge} to {high}{why}"
    if isinstance(low, Gt) and high is not None:
        return f"be above {low.gt} and at most {high}{why}"
    if isinstance(low, Gt):
        return f"be above {low.gt}{why}"
    if isinstance(low, Ge) and low.ge == 0:
        return f"not be negative{why}"
    if isinstance(low, Ge):
        return f"be at least {low.ge}{why}"
    return f"be at most {high}{why}"
