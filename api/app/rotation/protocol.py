"""The Secrets Manager rotation protocol, shared by every handler.

Secrets Manager calls a rotation function four times with the same
``ClientRequestToken`` (the new version id): ``createSecret`` stores the new value
as ``AWSPENDING``, ``setSecret`` makes the resource accept it, ``testSecret``
checks it, ``finishSecret`` moves ``AWSCURRENT`` to it. Every step may be retried,
so every step is idempotent.

Before any step the guard AWS requires runs: rotation must be enabled, the token
must be a version of the secret staged ``AWSPENDING``, and a token already
``AWSCURRENT`` means the rotation finished (nothing to do). Secrets Manager
creates that version before the first call; an emulator cannot create a version
without a value, so the local driver (``ecomind secrets rotate --local``) marks
its events ``"LocalDriver": true`` and ``createSecret`` then creates the version.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from app.secrets.environment import EnvironmentModel, Generation, model

__all__ = ["STEPS", "RotationError", "Rotator", "function_environment", "pending_version"]

log = logging.getLogger("app.rotation")

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


class RotationError(RuntimeError):
    """A step cannot proceed; the message names the secret and the step, never a value."""


def function_environment() -> EnvironmentModel:
    """The model of the function's ``ENVIRONMENT``; a missing or unknown one gets production's rules."""
    try:
        return model(os.environ.get("ENVIRONMENT", "production"))
    except ValueError:
        return model("production")


def pending_version(stages: Mapping[str, Iterable[str]]) -> str | None:
    """The version a rotation under way (or stopped) left ``AWSPENDING`` without ``AWSCURRENT``.

    ``stages`` maps version ids to their stages (DescribeSecret's ``VersionIdsToStages``).
    None: no rotation is under way. Secrets Manager puts a stage on one version at a time,
    so there is at most one.
    """
    for version, labels in stages.items():
        staged = set(labels)
        if "AWSPENDING" in staged and "AWSCURRENT" not in staged:
            return version
    return None


class Rotator(ABC):
    # The model's key of the secret this rotator rotates (database, jwt).
    secret_key: ClassVar[str]

    def __init__(self, client: Any, environment: EnvironmentModel | None = None) -> None:
        self.client = client
        self.model = environment or function_environment()

    def run(self, event: dict[str, Any]) -> None:
        arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
        if step not in STEPS:
            raise RotationError(f"{arn}: unknown step {step!r}")
        meta = self.client.describe_secret(SecretId=arn)
        if not meta.get("RotationEnabled"):
            raise RotationError(f"{arn}: rotation is not enabled")
        stages = meta.get("VersionIdsToStages", {})
        if token not in stages:
            if not (step == "createSecret" and event.get("LocalDriver")):
                raise RotationError(f"{arn}: version {token} is not a version of this secret")
        elif "AWSCURRENT" in stages[token]:
            log.info("%s: version %s is already AWSCURRENT; nothing to do", arn, token)
            return
        elif "AWSPENDING" not in stages[token]:
            raise RotationError(f"{arn}: version {token} is not staged AWSPENDING")
        getattr(
            self, {"createSecret": "create", "setSecret": "set", "testSecret": "test", "finishSecret": "finish"}[step]
        )(arn, token)

    # -- helpers ---------------------------------------------------------------------

    def current_version(self, arn: str) -> str:
        stages = self.client.describe_secret(SecretId=arn).get("VersionIdsToStages", {})
        return str(next(v for v, s in stages.items() if "AWSCURRENT" in s))

    def pending_exists(self, arn: str, token: str) -> bool:
        try:
            self.client.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
        except self.client.exceptions.ResourceNotFoundException:
            return False
        return True

    def read(self, arn: str, *, stage: str = "AWSCURRENT", token: str | None = None) -> str:
        kwargs: dict[str, Any] = {"SecretId": arn, "VersionStage": stage}
        if token:
            kwargs["VersionId"] = token
        return str(self.client.get_secret_value(**kwargs)["SecretString"])

    def put_pending(self, arn: str, token: str, value: str) -> None:
        self.client.put_secret_value(
            SecretId=arn, ClientRequestToken=token, SecretString=value, VersionStages=["AWSPENDING"]
        )

    def stale(self, arn: str, token: str) -> bool:
        """Whether resuming the pending version ``token`` would be wrong: it holds nothing new
        (its value is AWSCURRENT's, as a rotation started without a function leaves it)."""
        try:
            pending = self.read(arn, stage="AWSPENDING", token=token)
        except self.client.exceptions.ResourceNotFoundException:
            return True
        return pending == self.read(arn)

    def random_password(self, generation: Generation) -> str:
        """GetRandomPassword with the secret's generation rules (app.secrets.environment)."""
        return str(self.client.get_random_password(**generation.get_random_password_args())["RandomPassword"])

    # -- steps -------------------------------------------------------------------------

    @abstractmethod
    def create(self, arn: str, token: str) -> None: ...

    @abstractmethod
    def set(self, arn: str, token: str) -> None: ...

    @abstractmethod
    def test(self, arn: str, token: str) -> None: ...

    def finish(self, arn: str, token: str) -> None:
        current = self.current_version(arn)
        if current == token:
            return
        self.client.update_secret_version_stage(
            SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token, RemoveFromVersionId=current
        )
        log.info("%s: AWSCURRENT moved to %s", arn, token)
