"""Secret references: a variable may name where its value lives instead of holding it.

Three forms are understood:

* ``arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME[:JSON_KEY[:STAGE[:VERSION_ID]]]``
  is the ECS ``valueFrom`` grammar, so a string copied from a task definition works
  unchanged on a laptop;
* ``aws-secretsmanager:NAME[:JSON_KEY[:STAGE[:VERSION_ID]]]``, the same with the region
  taken from ``AWS_REGION``;
* ``file:PATH``, the content of a mounted secret file, read again on every refresh.

As in ECS, an empty JSON key means the whole secret string, and a version stage and
a version id cannot both be given. Secret names cannot contain ``:``, which is what
makes the grammar unambiguous.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from app.secrets.errors import MalformedReference

__all__ = [
    "AwsRef",
    "FileRef",
    "Reference",
    "default_reference",
    "is_reference",
    "parse_reference",
]

_ARN_PREFIX = "arn:"
_SM_PREFIX = "aws-secretsmanager:"
_FILE_PREFIX = "file:"
# Secrets Manager names: letters, digits and /_+=.@- (ARNs add a -XXXXXX suffix).
_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_ACCOUNT = re.compile(r"^\d{12}$")


@dataclass(frozen=True, slots=True)
class AwsRef:
    """A value in AWS Secrets Manager.

    ``secret_id`` is what ``GetSecretValue`` takes: the ARN without the ECS suffixes,
    or the bare name. ``region`` is None when it comes from ``AWS_REGION``.
    """

    secret_id: str
    region: str | None = None
    json_key: str | None = None
    version_stage: str | None = None
    version_id: str | None = None
    text: str = ""

    def __str__(self) -> str:
        return self.text or _format_aws(self)

    def with_stage(self, stage: str) -> AwsRef:
        """The same secret and key, read at ``stage`` (AWSCURRENT, AWSPENDING...)."""
        changed = replace(self, version_stage=stage, version_id=None, text="")
        return replace(changed, text=_format_aws(changed))

    @property
    def whole_secret(self) -> AwsRef:
        """The reference to the full secret string (no JSON key) at the same version."""
        changed = replace(self, json_key=None, text="")
        return replace(changed, text=_format_aws(changed))


@dataclass(frozen=True, slots=True)
class FileRef:
    path: Path
    text: str = ""

    def __str__(self) -> str:
        return self.text or f"file:{self.path}"


Reference = AwsRef | FileRef


def _format_aws(ref: AwsRef) -> str:
    base = ref.secret_id if ref.secret_id.startswith(_ARN_PREFIX) else _SM_PREFIX + ref.secret_id
    tail = [ref.json_key or "", ref.version_stage or "", ref.version_id or ""]
    while tail and not tail[-1]:
        tail.pop()
    return ":".join([base, *tail])


def is_reference(text: str) -> bool:
    """True when ``text`` is meant as a reference (it may still be malformed)."""
    return text.startswith((_SM_PREFIX, _FILE_PREFIX)) or (
        text.startswith(_ARN_PREFIX) and ":secretsmanager:" in text[:40]
    )


def parse_reference(text: str) -> Reference:
    """Parse one reference; raises :class:`MalformedReference` saying what is wrong."""
    text = text.strip()
    if text.startswith(_FILE_PREFIX):
        path = text[len(_FILE_PREFIX) :]
        if not path:
            raise MalformedReference(
                "the file: reference names no path",
                fix="write file:/path/to/mounted/secret",
            )
        return FileRef(path=Path(path), text=text)
    if text.startswith(_SM_PREFIX):
        fields = text[len(_SM_PREFIX) :].split(":")
        name, extra = fields[0], fields[1:]
        _check_name(name, text)
        return _with_suffixes(AwsRef(secret_id=name, text=text), extra, text)
    if text.startswith(_ARN_PREFIX):
        fields = text.split(":")
        if len(fields) < 7 or fields[2] != "secretsmanager" or fields[5] != "secret":
            raise MalformedReference(
                f"'{_shape(text)}' is not a Secrets Manager ARN",
                fix="use arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME[:JSON_KEY[:STAGE[:VERSION_ID]]]",
            )
        partition, region, account, name = fields[1], fields[3], fields[4], fields[6]
        if not partition.startswith("aws"):
            raise MalformedReference(f"unknown ARN partition '{partition}'", fix="use aws, aws-cn or aws-us-gov")
        if not _REGION.match(region):
            raise MalformedReference(f"'{region}' in the ARN is not an AWS region", fix="e.g. us-east-1")
        if not _ACCOUNT.match(account):
            raise MalformedReference("the ARN's account id is not 12 digits", fix="copy the ARN from the console")
        _check_name(name, text)
        secret_id = ":".join(fields[:7])
        return _with_suffixes(AwsRef(secret_id=secret_id, region=region, text=text), fields[7:], text)
    raise MalformedReference(
        "not a reference",
        fix="references start with arn:...:secretsmanager:, aws-secretsmanager: or file:",
    )


def default_reference(prefix: str, kind: str) -> AwsRef:
    """The reference used in staging/production when a variable is unset."""
    name = f"{prefix.rstrip('/')}/{kind}"
    return AwsRef(secret_id=name, text=_SM_PREFIX + name)


def _check_name(name: str, text: str) -> None:
    if not _NAME.match(name):
        raise MalformedReference(
            f"'{_shape(text)}' has no valid secret name",
            fix="secret names use letters, digits and /_+=.@- only",
        )


def _with_suffixes(ref: AwsRef, extra: list[str], text: str) -> AwsRef:
    if len(extra) > 3:
        raise MalformedReference(
            f"'{_shape(text)}' has {len(extra)} fields after the name; at most 3 (json-key:version-stage:version-id)",
            fix="remove the extra ':' fields",
        )
    json_key, stage, version_id = [*extra, "", "", ""][:3]
    if stage and version_id:
        raise MalformedReference(
            f"'{_shape(text)}' gives both a version stage and a version id",
            fix="give one of them, as ECS requires (e.g. NAME:KEY:AWSCURRENT: or NAME:KEY::VERSION_ID)",
        )
    return replace(ref, json_key=json_key or None, version_stage=stage or None, version_id=version_id or None)


def _shape(text: str) -> str:
    """A reference as safe to print: references hold names, never values, but cap length."""
    return text if len(text) <= 200 else text[:200] + "..."
