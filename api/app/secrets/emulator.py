"""What exists only because an emulator answers unlike AWS: one adapter, used on an emulator only.

An emulator is a Secrets Manager endpoint on this machine (``AWS_ENDPOINT_URL`` on loopback,
:func:`app.secrets.endpoints.on_this_machine`): moto, which the project rehearses on
(docs/deployment.md, "Rehearse on an emulator"). Every workaround of how it differs from AWS
is here, each called only when the endpoint is one; on AWS none of this runs:

* a 403 in the XML of another protocol, its code inside the message (:func:`code_in_403`);
* a 500 where AWS answers "no such secret" or has no such region (:func:`answer`);
* a ``BatchGetSecretValue`` that answers an older version after a stage move
  (:func:`stale_batch_answer`);
* ``RotateSecret(RotateImmediately=False)`` that rotates all the same
  (:func:`undo_immediate_rotation`);
* a stage left on two versions, which AWS never leaves, and the commands that leave it on the
  newest version that holds a value (:func:`doubled_stages`, :func:`stage_repairs`).

An emulator runs no rotation function either: the CLI drives the four steps itself
(``ecomind secrets rotate --local``) and says why when it refuses ``RotateSecret`` there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import botocore.exceptions
import botocore.session

from app.secrets.errors import EmulatorFailed, InvalidRegion, ResolutionError, SecretNotFound
from app.secrets.regions import REGION_PLACEHOLDER, region_option

__all__ = [
    "FIX",
    "answer",
    "code_in_403",
    "current_version",
    "stage_repairs",
    "stale_batch_answer",
    "undo_immediate_rotation",
]

# Where the docs say how to rehearse on an emulator; stock moto_server with IAM enforced
# answers 500 to every read a least-privilege policy (secret-??????) governs.
FIX = (
    'docs/troubleshooting.md, "An emulator answers 500": rehearse with the project\'s moto server '
    '(docs/deployment.md, "Rehearse on an emulator"), not stock moto_server'
)

# The stages Secrets Manager itself moves; it keeps each on one version at most.
_STAGES = ("AWSCURRENT", "AWSPREVIOUS", "AWSPENDING")

Translate = Callable[[BaseException, str, str], ResolutionError]


def code_in_403(message: str) -> str | None:
    """The error code inside an emulator's 403 (moto with IAM enforced).

    moto answers an authorization failure of a JSON-protocol service (Secrets Manager) with
    the XML body of the query protocol, which botocore reads as code "403" with the XML as
    the message: the real code (AccessDenied, InvalidClientTokenId, SignatureDoesNotMatch)
    is inside. AWS answers those in JSON, with the code where botocore looks.
    """
    found = re.search(r"<Code>([A-Za-z.]+)</Code>", message)
    return found.group(1) if found else None


def _known_region(region: str) -> bool:
    """Whether a partition of AWS (aws, aws-cn, aws-us-gov...) has Secrets Manager in ``region``."""
    session = botocore.session.get_session()
    return any(
        region in session.get_available_regions("secretsmanager", partition)
        for partition in session.get_available_partitions()
    )


def answer(error: ResolutionError, client: Any, secret_id: str | None, translate: Translate) -> ResolutionError:
    """An emulator's 500 said as AWS would have answered (``translate``: the secret layer's translator).

    moto answers 500 (a KeyError inside) for a region it does not have, which is no AWS
    region either, and for a secret some of its calls do not find (ListSecretVersionIds),
    which AWS answers with ResourceNotFoundException: one DescribeSecret tells. Anything
    else stays the emulator's failure."""
    if not isinstance(error, EmulatorFailed):
        return error
    region = str(client.meta.region_name or "")
    fixed: ResolutionError
    if region and not _known_region(region):
        fixed = InvalidRegion(
            f"{region} is not an AWS region: no partition of AWS has it, and the emulator at "
            f"{client.meta.endpoint_url} answered 500 for it",
            reference=error.reference,
            fix=f"export AWS_REGION={REGION_PLACEHOLDER}   # a region such as us-east-1",
        )
    elif secret_id:
        try:
            client.describe_secret(SecretId=secret_id)
            return error
        except botocore.exceptions.ClientError as exc:
            fixed = translate(exc, error.reference or "", str(client.meta.endpoint_url))
            if type(fixed) is not SecretNotFound:
                return error
        except botocore.exceptions.BotoCoreError:
            return error
    else:
        return error
    fixed.__cause__ = error.__cause__
    return fixed


def stale_batch_answer(item: Mapping[str, Any]) -> bool:
    """A value of ``BatchGetSecretValue`` that is not AWSCURRENT's: moto, after a stage move,
    answers an older version; it is read again by name at AWSCURRENT rather than trusted."""
    return "AWSCURRENT" not in tuple(item.get("VersionStages", ()))


def _stages(meta: Mapping[str, Any]) -> dict[str, list[str]]:
    mapping = meta.get("VersionIdsToStages") or {}
    return {version: sorted(stages) for version, stages in mapping.items() if stages}


def current_version(client: Any, name: str) -> str | None:
    """The version AWSCURRENT is on (DescribeSecret)."""
    return next((v for v, s in _stages(client.describe_secret(SecretId=name)).items() if "AWSCURRENT" in s), None)


def undo_immediate_rotation(client: Any, name: str, before: str | None) -> bool:
    """Asked not to rotate now (``RotateImmediately=False``), moto rotates all the same: the
    value the operator set (version ``before``) is stored again as AWSCURRENT, and AWSPREVIOUS
    put on it, not on the version the emulator made, so what was signed or connected with the
    kept value (a JWT's key id is its version id) keeps working, as after a rotation. Moving
    the stage back is not enough for moto, which keeps serving the value it rotated to.
    Returns whether the emulator had rotated."""
    after = current_version(client, name)
    if not (before and after and after != before):
        return False
    kept = client.get_secret_value(SecretId=name, VersionId=before)
    client.put_secret_value(SecretId=name, **{k: kept[k] for k in ("SecretString", "SecretBinary") if k in kept})
    staged = _stages(client.describe_secret(SecretId=name))
    previous = next((v for v, s in staged.items() if "AWSPREVIOUS" in s and v != before), None)
    move = {"RemoveFromVersionId": previous} if previous else {}
    client.update_secret_version_stage(SecretId=name, VersionStage="AWSPREVIOUS", MoveToVersionId=before, **move)
    return True


def doubled_stages(stages: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """Each stage of :data:`_STAGES` found on more than one version, with those versions: a
    state Secrets Manager never leaves (it moves a stage, it does not copy it), an emulator
    may (moto, after a stage was moved by hand and a value put). Readers then disagree on
    which value is current."""
    found: dict[str, list[str]] = {}
    for version, labels in stages.items():
        for stage in set(labels) & set(_STAGES):
            found.setdefault(stage, []).append(version)
    return {stage: versions for stage, versions in found.items() if len(versions) > 1}


def stage_repairs(
    client: Any, name: str, stages: Mapping[str, Sequence[str]], created: Mapping[str, Any] | None = None
) -> list[tuple[str, str, str]]:
    """Each stage on more than one version (impossible on AWS): what is wrong, the commands that
    leave it on the version that is really current, and why that one.

    ``stages`` maps each version to its stages in the order Secrets Manager lists them,
    ``created`` each version to its creation date. The version kept is the newest of them
    (by creation, then by that order) that holds a value: the last write that staged it, as
    on AWS, where staging a version moves the stage from the others. Which one a read of the
    stage gets is an emulator's accident (moto: the oldest), and a version with no value
    serves nobody."""
    listed, dates = list(stages), created or {}

    def age(version: str) -> tuple[float, int]:
        when = dates.get(version)
        return (when.timestamp() if isinstance(when, datetime) else float("-inf"), listed.index(version))

    def holds_value(version: str) -> bool:
        try:
            client.get_secret_value(SecretId=name, VersionId=version)
        except botocore.exceptions.ClientError:
            return False
        return True

    region = str(client.meta.region_name) if client.meta.region_name else None
    found = []
    for stage, versions in sorted(doubled_stages(stages).items()):
        newest_first = sorted(versions, key=age, reverse=True)
        keep = next((v for v in newest_first if holds_value(v)), newest_first[0])
        said = (
            f"{stage} is on {len(versions)} versions ({', '.join(sorted(versions))}): Secrets Manager keeps a "
            "stage on one version, an emulator may not (a stage moved by hand, then a value put); readers "
            "disagree on the value"
        )
        fix = " && ".join(
            f"aws secretsmanager update-secret-version-stage --secret-id {name} --version-stage {stage} "
            f"--remove-from-version-id {version} {region_option(region)}"
            for version in sorted(versions)
            if version != keep
        )
        found.append((said, fix, f"keeps {stage} on {keep}, the newest version staged {stage} that holds a value"))
    return found
