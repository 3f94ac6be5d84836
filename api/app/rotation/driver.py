"""Drive a rotation's four steps locally, as Secrets Manager would.

Used by ``ecomind secrets rotate --local`` and against emulators (which cannot run
a Lambda). A rotation left half done (a step failed) is resumed: the version
already staged ``AWSPENDING`` is reused, and each step is idempotent.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from app.rotation.jwt import JwtRotator
from app.rotation.postgres import PostgresRotator
from app.rotation.protocol import STEPS, RotationError, Rotator, pending_version

__all__ = ["rotate_locally", "rotator_for"]


def rotator_for(
    client: Any, arn: str, strategy: str | None = None, master_url: Callable[[], str | None] | None = None
) -> Rotator:
    """PostgreSQL for an RDS-shaped secret, JWT otherwise; checks ``strategy`` against the secret.

    ``master_url``: where a database rotation gets the master user's URL if it needs it
    (default: ECOMIND_MASTER_URL)."""
    value = str(client.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])
    try:
        data = json.loads(value)
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("host") and data.get("username"):
        actual = "alternating-users" if data.get("masterarn") else "single-user"
        if strategy and strategy != actual:
            raise RotationError(
                f"{arn}: the secret is set up for {actual} rotation"
                + ("" if actual == "alternating-users" else " (alternating users needs a masterarn key)")
            )
        return PostgresRotator(client, master_url=master_url)
    if strategy:
        raise RotationError(f"{arn}: --strategy applies to database secrets only")
    return JwtRotator(client)


def pending_token(client: Any, arn: str) -> str | None:
    return pending_version(client.describe_secret(SecretId=arn).get("VersionIdsToStages", {}))


def rotate_locally(client: Any, arn: str, rotator: Rotator, on_step: Callable[[str], None] = lambda step: None) -> str:
    """Run createSecret..finishSecret; returns the new version id.

    A rotation left half done is resumed from its AWSPENDING version, unless that
    version no longer matches AWSCURRENT apart from the password (the secret was
    edited since, e.g. a new host): resuming it would loop on the old host, or undo
    the edit. Such a version is unstaged and a new rotation starts.
    """
    token = pending_token(client, arn)
    if token is not None and rotator.stale(arn, token):
        client.update_secret_version_stage(SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=token)
        on_step(f"discarded AWSPENDING {token}: it no longer matches AWSCURRENT")
        token = None
    token = token or str(uuid.uuid4())
    for step in STEPS:
        on_step(step)
        try:
            rotator.run({"SecretId": arn, "ClientRequestToken": token, "Step": step, "LocalDriver": True})
        except RotationError:
            raise
        except Exception as exc:
            raise RotationError(f"{arn}: {step} failed ({type(exc).__name__})") from exc
    # Secrets Manager clears AWSPENDING once the rotation has finished.
    client.update_secret_version_stage(SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=token)
    return token
