"""JWT signing keys that rotate without logging anyone out.

Tokens are HS256, signed with the current ``JWT_SECRET`` and carry its version id
as ``kid`` (Secrets Manager's VersionId; a short digest for a file or a plain value).
Verification accepts the current key and, for a Secrets Manager reference, the
``AWSPREVIOUS`` version, so a token issued just before a rotation stays valid. A
token whose ``kid`` we do not know triggers one refresh of the secret (another
replica may have seen the rotation first), at most every few seconds.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from app.secrets.errors import ResolutionError, SecretNotFound
from app.secrets.store import ResolvedSecret
from app.settings.loading import Settings
from app.telemetry import JWT_PREVIOUS_KEY

__all__ = [
    "InvalidToken",
    "SigningKey",
    "TokenService",
]

log = logging.getLogger("app.auth.tokens")

ALGORITHM = "HS256"
# Exactly what :meth:`TokenService.issue` signs; a token with any other claim is refused.
CLAIMS = frozenset({"sub", "org", "role", "iat", "exp", "jti"})
# Clock difference tolerated between the replica that issued a token and the one verifying it.
LEEWAY_SECONDS = 60


class InvalidToken(Exception):
    """The token is not acceptable; the message is safe to return to the client."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    secret: bytes = field(repr=False)


def _key(resolved: ResolvedSecret) -> SigningKey:
    secret = resolved.value.get_secret_value().encode()
    kid = resolved.version_id or "sha256:" + hashlib.sha256(secret).hexdigest()[:16]
    return SigningKey(kid, secret)


class TokenService:
    UNKNOWN_KID_REFRESH_INTERVAL = 5.0
    # After a failed read of AWSPREVIOUS (Secrets Manager unreachable, throttled...), the
    # next read is tried this much later: tokens signed before the rotation wait that long.
    PREVIOUS_RETRY_INTERVAL = 5.0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._jwt = settings.secret("JWT_SECRET")
        self._stats = settings.stats
        self._key_of: tuple[ResolvedSecret, SigningKey] | None = None
        self._lock = threading.Lock()
        self._previous: tuple[str, SigningKey | None] | None = None  # (current kid, previous key)
        self._previous_retry_at = 0.0
        self._previous_failed_at = 0.0  # when the last read of AWSPREVIOUS failed (monotonic)
        self._last_unknown_refresh = 0.0
        self._reading_previous = threading.Lock()  # one read of AWSPREVIOUS at a time
        self._reading_current = threading.Lock()  # one read after an unknown kid at a time
        # _last_unknown_refresh: when the last of those reads ended (monotonic)

    def current_key(self) -> SigningKey:
        resolved = self._jwt.get()
        cached = self._key_of
        if cached is not None and cached[0] is resolved:
            return cached[1]
        key = _key(resolved)
        self._key_of = (resolved, key)
        return key

    def previous_key(self, current: SigningKey, asked: float = 0.0) -> SigningKey | None:
        """AWSPREVIOUS, looked up once per current version (absent before the first rotation).

        Only answers are kept: the key, or "there is none". A failed read is tried again
        after ``PREVIOUS_RETRY_INTERVAL``; caching it would refuse every token signed before
        the rotation until the next one."""
        cached = self._previous
        if cached is not None and cached[0] == current.kid:
            return cached[1]
        # One read for every request that needs it: the others wait for its answer (a
        # request served meanwhile would be refused) rather than each make its own.
        with self._reading_previous:
            cached = self._previous
            if cached is not None and cached[0] == current.kid:
                return cached[1]
            previous: SigningKey | None = None
            if self._jwt.is_reference:
                # Not again within the interval, nor for a request that began before the last
                # read failed (it already waited for that one).
                if time.monotonic() < self._previous_retry_at or self._previous_failed_at >= asked > 0:
                    return None
                try:
                    previous = _key(self._jwt.refresh(stage="AWSPREVIOUS"))
                except SecretNotFound:
                    previous = None  # no rotation yet
                except ResolutionError as exc:
                    self._previous_failed_at = time.monotonic()
                    self._previous_retry_at = self._previous_failed_at + self.PREVIOUS_RETRY_INTERVAL
                    log.warning(
                        "reading JWT_SECRET's AWSPREVIOUS failed (%s): tokens issued before the last rotation are "
                        "refused until it is read; next try in %.0f s",
                        type(exc).__name__,
                        self.PREVIOUS_RETRY_INTERVAL,
                    )
                    return None
            with self._lock:
                self._previous = (current.kid, previous)
            return previous

    def keys(self, asked: float = 0.0) -> dict[str, SigningKey]:
        """The current key and the previous one; ``asked``: when the request began (monotonic)."""
        current = self.current_key()
        found = {current.kid: current}
        previous = self.previous_key(current, asked)
        if previous is not None:
            found.setdefault(previous.kid, previous)
        return found

    def issue(self, *, subject: str, org_id: str, role: str, minutes: int | None = None) -> tuple[str, int]:
        key = self.current_key()
        lifetime = minutes or self.settings.access_token_expire_minutes
        now = datetime.now(UTC)
        claims = {
            "sub": subject,
            "org": org_id,
            "role": role,
            "iat": now,
            "exp": now + timedelta(minutes=lifetime),
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, key.secret, algorithm=ALGORITHM, headers={"kid": key.kid})
        return token, lifetime * 60

    def verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("malformed token") from None
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("unsupported token algorithm")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise InvalidToken("token has no key id")
        asked = time.monotonic()
        keys = self.keys(asked)
        if kid not in keys:
            keys = self._after_unknown_kid(asked)
        key = keys.get(kid)
        if key is None:
            raise InvalidToken("token signed with an unknown key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.secret,
                algorithms=[ALGORITHM],
                options={"require": ["exp", "iat", "sub", "jti", "org", "role"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("token expired") from None
        except jwt.PyJWTError:
            raise InvalidToken("invalid token") from None
        self._check_claims(claims)
        if kid != self.current_key().kid:
            self._stats.inc(JWT_PREVIOUS_KEY)  # issued before the last rotation
        return claims

    def _check_claims(self, claims: dict[str, Any]) -> None:
        """Exactly the claims we sign; ``iat`` and ``exp`` integers, ``exp`` within one token
        lifetime of ``iat`` (PyJWT accepts a string, a float, or ``exp`` in the year 10^22)."""
        if set(claims) != CLAIMS:
            raise InvalidToken("malformed token claims")
        iat, exp = claims["iat"], claims["exp"]
        if type(iat) is not int or type(exp) is not int:
            raise InvalidToken("malformed token claims")
        lifetime = self.settings.access_token_expire_minutes * 60
        if not iat < exp <= iat + lifetime + LEEWAY_SECONDS:
            raise InvalidToken("malformed token claims")

    def _after_unknown_kid(self, asked: float) -> dict[str, SigningKey]:
        # At most one read per interval (a made-up kid must not buy a call to Secrets
        # Manager); requests that arrive while it runs wait for it, then see its answer.
        with self._reading_current:
            # Skipped when a read ended after this request asked (it waited for that one), or
            # less than the interval ago; the interval counts from the end of a read, so a
            # read that took long (Secrets Manager hanging) is not followed by another at once.
            ended = self._last_unknown_refresh
            if ended < asked and time.monotonic() - ended >= self.UNKNOWN_KID_REFRESH_INTERVAL:
                try:
                    self._jwt.refresh()
                except ResolutionError as exc:
                    log.warning("refreshing JWT_SECRET after an unknown kid failed (%s)", type(exc).__name__)
                finally:
                    self._last_unknown_refresh = time.monotonic()
        return self.keys(asked)
