"""JWT signing keys that rotate without logging anyone out, and password hashing.

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
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .secrets.errors import ResolutionError
from .secrets.store import ResolvedSecret
from .settings import Settings

__all__ = ["InvalidToken", "SigningKey", "TokenService", "hash_password", "verify_password"]

log = logging.getLogger("app.security")

ALGORITHM = "HS256"
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


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

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._jwt = settings.secret("JWT_SECRET")
        self._key_of: tuple[ResolvedSecret, SigningKey] | None = None
        self._lock = threading.Lock()
        self._previous: tuple[str, SigningKey | None] | None = None  # (current kid, previous key)
        self._last_unknown_refresh = 0.0

    def current_key(self) -> SigningKey:
        resolved = self._jwt.get()
        cached = self._key_of
        if cached is not None and cached[0] is resolved:
            return cached[1]
        key = _key(resolved)
        self._key_of = (resolved, key)
        return key

    def previous_key(self, current: SigningKey) -> SigningKey | None:
        """AWSPREVIOUS, looked up once per current version (absent before the first rotation)."""
        cached = self._previous
        if cached is not None and cached[0] == current.kid:
            return cached[1]
        previous: SigningKey | None = None
        if self._jwt.is_reference:
            try:
                previous = _key(self._jwt.refresh(stage="AWSPREVIOUS"))
            except ResolutionError:
                previous = None
        with self._lock:
            self._previous = (current.kid, previous)
        return previous

    def keys(self) -> dict[str, SigningKey]:
        current = self.current_key()
        found = {current.kid: current}
        previous = self.previous_key(current)
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
        keys = self.keys()
        if kid not in keys:
            keys = self._after_unknown_kid()
        key = keys.get(kid)
        if key is None:
            raise InvalidToken("token signed with an unknown key")
        try:
            return jwt.decode(
                token,
                key.secret,
                algorithms=[ALGORITHM],
                options={"require": ["exp", "iat", "sub", "jti", "org", "role"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("token expired") from None
        except jwt.PyJWTError:
            raise InvalidToken("invalid token") from None

    def _after_unknown_kid(self) -> dict[str, SigningKey]:
        now = time.monotonic()
        with self._lock:
            if now - self._last_unknown_refresh < self.UNKNOWN_KID_REFRESH_INTERVAL:
                return self.keys()
            self._last_unknown_refresh = now
        try:
            self._jwt.refresh()
        except ResolutionError as exc:
            log.warning("refreshing JWT_SECRET after an unknown kid failed (%s)", type(exc).__name__)
        return self.keys()
