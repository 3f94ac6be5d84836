"""What every check of the doctor shares: a check's verdict, the AWS session, the region, the emulator.

A check that could not run is ``not_checked``, never ``ok``. Whether a botocore error is a
denial or a region that did not answer is the secret layer's translator's verdict
(:func:`app.secrets.aws_errors.translate_error`), never a code compared here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from app.cli.output import Verbatim
from app.secrets.environment import SECRET_VARIABLES
from app.secrets.errors import BadCredentials, NoCredentials, ResolutionError, SecretAccessDenied

if TYPE_CHECKING:
    from app.settings.loading import Inspection


__all__ = ["ROTATION_CHECKS", "Check", "DoctorBase", "denied_by_policy", "region_failed"]


Status = Literal["ok", "fail", "warn", "not_checked"]


# What the doctor checks of a secret it read, with what DescribeSecret says: reported as not
# checked together when it cannot look.
ROTATION_CHECKS = ("rotation", "pending version", "stages")


@dataclass
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": Verbatim(self.fix)}


def denied_by_policy(exc: BaseException) -> bool:
    """A policy refused the call (the secret layer's translator reads the codes): missing or
    refused credentials are not a denial, and no policy would fix them."""
    from app.secrets.aws_errors import translate_error

    error = translate_error(exc, "", "")
    return isinstance(error, SecretAccessDenied) and not isinstance(error, NoCredentials | BadCredentials)


def region_failed(exc: BaseException) -> bool:
    """The region did not answer (connection, timeout, 5xx, throttled): not a fact about the
    secret. The secret layer's rule, on the error it would raise for ``exc``."""
    from app.secrets.aws_errors import translate_error
    from app.secrets.failover import regional_failure

    return regional_failure(translate_error(exc, "", ""))


class DoctorBase:
    """The doctor's state: the inspection, the AWS session and region, what was found so far."""

    def __init__(
        self, insp: Inspection, *, timeout: float, as_of: datetime, secrets: tuple[str, ...] = SECRET_VARIABLES
    ) -> None:

        from app.secrets.clients import new_session
        from app.secrets.endpoints import on_this_machine, secretsmanager_endpoint

        self.insp = insp
        # The secret variables asked for (--only): the checks of the others are not run at all,
        # which is no "could not run".
        self.secrets = secrets
        self.m = insp.model
        self.timeout = timeout
        self.as_of = as_of
        self.checks: list[Check] = []
        self.session = new_session()
        # Why the AWS configuration gives no credentials (a profile that does not exist...),
        # found when reading it: the credentials check says so, the checks that need no AWS run.
        self.unusable: ResolutionError | None = None
        self.region = insp.collected.raw.get("AWS_REGION") or self.config_region()
        self.endpoint = secretsmanager_endpoint()
        self.emulator = on_this_machine(self.endpoint)
        # Regions found not answering (why, in a few words): asked once, not once per secret.
        self.down: dict[str | None, str] = {}
        # Who the credentials are (sts:GetCallerIdentity), once: None until asked, or when it failed.
        self.identity: dict[str, Any] | None = None

    def config_region(self) -> str | None:
        import botocore.exceptions

        from app.secrets.aws_errors import translate_error

        try:
            return self.session.get_config_variable("region")  # type: ignore[no-any-return]
        except botocore.exceptions.BotoCoreError as exc:
            self.unusable = translate_error(exc, "the secrets", "AWS")
            return None

    def replica_regions(self) -> list[str]:
        """SECRETS_REPLICA_REGIONS as the settings read it: the regions reads fail over to."""
        from app.secrets.regions import parse_regions

        wanted, _ = parse_regions(self.insp.collected.raw.get("SECRETS_REPLICA_REGIONS"))
        return wanted

    def add(self, name: str, status: Status, detail: str, fix: str = "") -> None:
        self.checks.append(Check(name, status, detail, fix))

    def client(self, service: str, region: str | None = None) -> Any:
        from app.secrets.clients import client_config

        endpoint = self.endpoint if service == "secretsmanager" else None
        return self.session.create_client(
            service, region_name=region or self.region, endpoint_url=endpoint, config=client_config(2)
        )
