"""JWT secret rotation: a new random secret of at least 256 bits, same protocol.

Lambda entry point: ``app.rotation.jwt.handler``. Tokens signed with the old
secret keep verifying through ``AWSPREVIOUS`` (see app/security.py).
"""

from __future__ import annotations

import secrets
from typing import Any

from ..secrets.aws import secretsmanager_client
from .protocol import RotationError, Rotator

__all__ = ["JwtRotator", "handler"]

MIN_BYTES = 32


class JwtRotator(Rotator):
    def create(self, arn: str, token: str) -> None:
        if self.pending_exists(arn, token):
            return
        self.put_pending(arn, token, secrets.token_urlsafe(48))  # 384 bits

    def set(self, arn: str, token: str) -> None:
        """Nothing outside Secrets Manager holds the JWT secret."""

    def test(self, arn: str, token: str) -> None:
        value = self.read(arn, stage="AWSPENDING", token=token)
        if len(value.encode()) < MIN_BYTES:
            raise RotationError(f"{arn}: the pending JWT secret is shorter than {MIN_BYTES} bytes")


def handler(event: dict[str, Any], context: Any = None) -> None:
    JwtRotator(secretsmanager_client()).run(event)
