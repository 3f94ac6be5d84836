"""Every error the secret layer raises, in one tree.

::

    SecretsError                      base: never carries a secret value
    ├── MalformedReference            a reference string is malformed              (config)
    ├── InvalidEndpoint               AWS_ENDPOINT_URL (or its service's) is no URL (config)
    ├── ResolutionError               a well-formed reference could not be resolved (failed)
    │   ├── SecretNotFound            ResourceNotFoundException, missing stage/version (not_found)
    │   │   └── SecretDeleted         scheduled for deletion                        (not_found)
    │   ├── SecretAccessDenied        AccessDeniedException or a bare HTTP 403      (denied)
    │   │   ├── NoCredentials         no AWS credentials at all                     (denied)
    │   │   │   └── CredentialsConfigError  the config names some that cannot be had (denied)
    │   │   └── BadCredentials        found, but AWS refuses them (not a policy)    (denied)
    │   │       ├── InvalidAccessKey      the access key id is unknown              (denied)
    │   │       ├── SignatureMismatch     the secret key is not the key id's        (denied)
    │   │       └── ExpiredCredentials    the session token has expired             (denied)
    │   ├── NoRegion                  no region to look in                          (config)
    │   │   └── InvalidRegion         not a region name, or none AWS has            (config)
    │   ├── SecretsManagerUnreachable endpoint down, DNS, TLS, timeouts             (unreachable)
    │   │   └── EmulatorFailed        an emulator on this machine answered 5xx      (unreachable)
    │   ├── SecretsThrottled          ThrottlingException after the retries ran out (unreachable)
    │   ├── SecretFormatError         not JSON where a key is asked, missing JSON key (config)
    │   └── SecretFileError           a ``file:`` path that cannot be read          (not_found)
    └── SettingsError                 one or more Problems found while loading settings

Each error has a :attr:`~SecretsError.kind`; the CLI turns kinds into exit codes
(docs/troubleshooting.md, "Exit codes"). Messages name the variable (when known), the
reference as written by the operator (never the value behind it) and a fix. AWS and
OS errors are translated in :mod:`app.secrets.aws_errors` and :mod:`app.secrets.files` with
``raise ... from exc``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar, Literal

from app.secrets.regions import region_option

__all__ = [
    "BadCredentials",
    "CredentialsConfigError",
    "EmulatorFailed",
    "ErrorKind",
    "ExpiredCredentials",
    "Finding",
    "InvalidAccessKey",
    "InvalidEndpoint",
    "InvalidRegion",
    "MalformedReference",
    "NoCredentials",
    "NoRegion",
    "Problem",
    "ResolutionError",
    "SecretAccessDenied",
    "SecretDeleted",
    "SecretFileError",
    "SecretFormatError",
    "SecretNotFound",
    "SecretsError",
    "SecretsManagerUnreachable",
    "SecretsThrottled",
    "SettingsError",
    "SignatureMismatch",
    "scheduled_deletion",
    "set_key_fix",
]

Severity = Literal["error", "warning"]
ErrorKind = Literal["failed", "config", "not_found", "denied", "unreachable"]


class SecretsError(Exception):
    """Base of the tree. ``str(exc)`` is safe to print and log."""

    kind: ClassVar[ErrorKind] = "failed"

    def __init__(self, message: str, *, fix: str = "", variable: str | None = None) -> None:
        self.message = message
        self.fix = fix
        self.variable = variable
        super().__init__(self.render())

    def render(self) -> str:
        text = self.message
        if self.variable:
            text = f"{self.variable}: {text}"
        if self.fix:
            text = f"{text}\n  fix: {self.fix}"
        return text


class MalformedReference(SecretsError):
    """A reference string does not follow the grammar of docs/secrets.md."""

    kind = "config"


class InvalidEndpoint(SecretsError):
    """The endpoint override (AWS_ENDPOINT_URL_SECRETS_MANAGER or AWS_ENDPOINT_URL) is not a URL
    botocore takes: no client can be made, so nothing is asked of anyone."""

    kind = "config"


class ResolutionError(SecretsError):
    """A reference is well formed but its value could not be obtained."""

    def __init__(
        self,
        message: str,
        *,
        reference: str,
        fix: str = "",
        variable: str | None = None,
    ) -> None:
        self.reference = reference
        super().__init__(message, fix=fix, variable=variable)


class SecretNotFound(ResolutionError):
    kind = "not_found"


class SecretDeleted(SecretNotFound):
    """The secret exists but is scheduled for deletion (it can still be restored)."""


def scheduled_deletion(deleted: object) -> str:
    """'scheduled for deletion on DATE' (DescribeSecret's DeletedDate, in UTC), without a date when none is known."""
    if not deleted:
        return "scheduled for deletion"
    when = deleted.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if isinstance(deleted, datetime) else str(deleted)
    return f"scheduled for deletion on {when}"


class SecretAccessDenied(ResolutionError):
    kind = "denied"


class NoCredentials(SecretAccessDenied):
    """No AWS credentials were found at all: nothing was denied, nothing was asked."""


class CredentialsConfigError(NoCredentials):
    """The AWS configuration names credentials that cannot be had: a profile that does not
    exist, a config file that does not parse, an SSO session expired, a credential process
    that failed. Nothing was asked of AWS."""


class BadCredentials(SecretAccessDenied):
    """Credentials were found but AWS refused them before any policy was read: no policy
    grants the fix. (IAM never denies ``sts:GetCallerIdentity``; when it fails, this is why.)"""


class InvalidAccessKey(BadCredentials):
    """The access key id is unknown to AWS: deleted, deactivated, mistyped, or another account's endpoint."""


class SignatureMismatch(BadCredentials):
    """The request's signature does not match: the secret access key is not the one of the key id."""


class ExpiredCredentials(BadCredentials):
    """Temporary credentials (SSO, an assumed role) whose session token has expired."""


class NoRegion(ResolutionError):
    kind = "config"


class InvalidRegion(NoRegion):
    """The region given is none: not a region name (``us east 1``), or one no AWS partition has."""


class SecretsManagerUnreachable(ResolutionError):
    kind = "unreachable"


class EmulatorFailed(SecretsManagerUnreachable):
    """An emulator on this machine (AWS_ENDPOINT_URL on loopback) answered a server error: said
    as the emulator's failure, and no fix sends the operator to another region (reads still
    try the replica regions the settings list, as they do on AWS)."""


class SecretsThrottled(ResolutionError):
    kind = "unreachable"


class SecretFormatError(ResolutionError):
    kind = "config"


class SecretFileError(ResolutionError):
    kind = "not_found"


@dataclass(frozen=True)
class Finding:
    """What a policy check found in a value, before it is tied to a variable and a source."""

    message: str
    fix: str
    severity: Severity = "error"
    is_example: bool = False  # a known example value: the fix depends on where the value lives
    json_key: str | None = None  # the key of a JSON secret that holds the problem (its fix sets that key)


def set_key_fix(secret: str, key: str, region: str | None) -> str:
    """The fix of a finding in one JSON key of a stored secret: a command that sets that key."""
    command = f"ecomind secrets set {secret} {key} {region_option(region)}"
    return f"printf '%s' \"$VALUE\" | {command}   # VALUE: the right {key}"


@dataclass(frozen=True)
class Problem:
    """One finding about one variable. ``message`` and ``fix`` never hold a value."""

    variable: str
    source: str
    message: str
    fix: str
    severity: Severity = "error"
    kind: ErrorKind = "config"

    def render(self) -> str:
        return f"{self.variable} (from {self.source}): {self.message}\n  fix: {self.fix}"


class SettingsError(SecretsError):
    """Loading the settings found errors; ``problems`` lists every one of them.

    Its kind is the kind of the first error listed (problems come in the order of
    the variables), so ``config check`` exits like the first thing to fix.
    """

    def __init__(self, problems: list[Problem], sources: dict[str, str] | None = None) -> None:
        self.problems = problems
        self.sources = sources or {}
        errors = [p for p in problems if p.severity == "error"]
        self.error_kind: ErrorKind = errors[0].kind if errors else "config"
        lines = [f"{len(errors)} configuration problem(s):"]
        lines += ["- " + p.render().replace("\n", "\n  ") for p in problems]
        super().__init__("\n".join(lines))
