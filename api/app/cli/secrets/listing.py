"""``ecomind secrets list``, ``describe`` and ``history``: what a secret is, never its value."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from app.cli.fixes import secrets_command
from app.cli.options import DeployedOpt, JsonOpt, RegionOpt, value_of
from app.cli.output import Verbatim, data, print_json, say, table
from app.cli.secrets.calls import SecretName, aws_errors, existing, missing, region_of, secrets_client
from app.cli.secrets.kinds import deletion_notice, environment_model, stages_of
from app.cli.shell import shell
from app.secrets.endpoints import on_this_machine
from app.secrets.environment import PROJECT
from app.secrets.errors import SecretDeleted, SecretNotFound

__all__ = ["describe", "history", "list_"]


def _iso(value: Any) -> str | None:
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else None


def _rotation(client: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """Rotation as the doctor judges it (app/rotation/schedule.py): one "last rotated", one "next"."""
    from app.rotation.schedule import last_rotated, next_rotation

    last = last_rotated(meta, _versions(client, meta["Name"]))
    days = meta.get("RotationRules", {}).get("AutomaticallyAfterDays")
    nxt = next_rotation(meta, last)
    return {
        "rotation": "on" if meta.get("RotationEnabled") else "off",
        "rotation_function": meta.get("RotationLambdaARN") or None,
        "every_days": days,
        "last_rotated": _iso(last),
        "next_rotation": _iso(nxt),
    }


def _versions(client: Any, name: str) -> list[dict[str, Any]]:
    """The secret's staged versions with their dates; none when they may not be listed (the
    dates then come from DescribeSecret's alone)."""
    import botocore.exceptions

    try:
        return list(client.list_secret_version_ids(SecretId=name).get("Versions", []))
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
        return []


def _replicas(meta: dict[str, Any]) -> list[dict[str, str | None]]:
    """Each replica region of the secret and its replication state (InSync, InProgress, Failed)."""
    return [
        {
            "region": r.get("Region"),
            "status": r.get("Status"),
            "status_message": r.get("StatusMessage"),
            "last_accessed": _iso(r.get("LastAccessedDate")),
        }
        for r in meta.get("ReplicationStatus") or []
    ]


def list_(
    environment: DeployedOpt = None,
    region: RegionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the environment's secrets with their stages and rotation; never a value.

    Without --environment, every secret under SECRETS_PREFIX (or ecomind/). Secrets
    scheduled for deletion are listed with the date.

    Example: ecomind secrets list -e production
    """
    env = value_of(environment) or shell().environment
    if env and env != "development":
        prefix = environment_model(env).prefix + "/"
    else:
        prefix = (shell().prefix or PROJECT).rstrip("/") + "/"
    client = secrets_client(region)
    rows = []
    with aws_errors(f"secrets under {prefix}", client, names_a_secret=False):
        pages = client.get_paginator("list_secrets").paginate(
            Filters=[{"Key": "name", "Values": [prefix]}], IncludePlannedDeletion=True
        )
        for page in pages:
            for meta in page.get("SecretList", []):
                if meta["Name"].startswith(prefix):
                    rows.append(
                        {
                            "name": Verbatim(meta["Name"]),
                            "state": deletion_notice(meta) or "active",
                            "stages": sorted(
                                {s for v in (meta.get("SecretVersionsToStages") or {}).values() for s in v}
                            ),
                            **_rotation(client, meta),
                        }
                    )
    region_name = client.meta.region_name
    if as_json:
        print_json({"region": region_name, "prefix": Verbatim(prefix), "secrets": rows})
        return
    if not rows:
        data(f"no secrets under {prefix} in {region_name}")
        return
    table(
        f"secrets under {prefix} in {region_name}",
        ("name", "state", "stages", "rotation", "every", "last rotated", "next rotation"),
        (
            (
                r["name"],
                r["state"],
                ",".join(r["stages"]),
                r["rotation"],
                str(r["every_days"] or "-"),
                r["last_rotated"] or "-",
                r["next_rotation"] or "-",
            )
            for r in rows
        ),
    )


def describe(
    name: SecretName,
    region: RegionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one secret's versions, stages, tags, rotation, replicas and state; never a value.

    Replicas: the secret's primary region, and each replica region with its
    replication status (InSync, InProgress, Failed) and Secrets Manager's message.

    Example: ecomind secrets describe ecomind/prod/database
    """
    client = secrets_client(region)
    meta = existing(client, name)
    info: dict[str, Any] = {
        "name": Verbatim(meta["Name"]),
        "arn": Verbatim(meta["ARN"]),
        "state": deletion_notice(meta) or "active",
        "kms_key": Verbatim(meta.get("KmsKeyId", "aws/secretsmanager (AWS managed)")),
        "tags": {t["Key"]: Verbatim(t["Value"]) for t in meta.get("Tags", [])},
        "versions": stages_of(meta),
        **_rotation(client, meta),
        "primary_region": meta.get("PrimaryRegion") or client.meta.region_name,
        "replicas": _replicas(meta),
    }
    if deletion_notice(meta):
        info["fix"] = Verbatim(secrets_command(f"restore {meta['Name']}", region_of(client)))
    if as_json:
        print_json(info)
        return
    for key, item in info.items():
        if key == "replicas":
            # One line per replica: region, status, and Secrets Manager's message when it has one.
            lines = [
                f"{r['region']} {r['status']}" + (f": {r['status_message']}" if r["status_message"] else "")
                for r in item
            ]
            for number, line in enumerate(lines or ["-"]):
                data(f"{key if number == 0 else '':18} {line}")
            continue
        shown = json.dumps(item) if isinstance(item, dict) else item
        data(f"{key:18} {shown if item not in (None, {}) else '-'}")


def history(
    name: SecretName,
    region: RegionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every version of a secret with its stages and dates; never a value.

    Example: ecomind secrets history ecomind/prod/jwt
    """
    client = secrets_client(region)
    listed = _listed_versions(client, name)
    versions = [
        {
            "version": Verbatim(v["VersionId"]),
            "stages": sorted(v.get("VersionStages", [])),
            "created": _iso(v.get("CreatedDate")),
            "last_accessed": _iso(v.get("LastAccessedDate")),
        }
        for v in listed
    ]
    # Newest first; within a second (rotations are fast), the stage order of a rotation.
    order = {"AWSPENDING": 0, "AWSCURRENT": 1, "AWSPREVIOUS": 2}
    versions.sort(key=lambda v: min((order.get(s, 3) for s in v["stages"]), default=3))
    versions.sort(key=lambda v: v["created"] or "", reverse=True)
    problems = _stage_problems(client, name, listed)
    if as_json:
        print_json(
            {
                "name": Verbatim(name),
                "versions": versions,
                "problems": [{"message": said, "fix": Verbatim(f"{fix}   # {why}")} for said, fix, why in problems],
            }
        )
        return
    table(
        f"versions of {name}",
        ("version", "stages", "created", "last accessed"),
        (
            (v["version"], ",".join(v["stages"]) or "-", v["created"] or "-", v["last_accessed"] or "-")
            for v in versions
        ),
    )
    for said, fix, why in problems:
        say(f"impossible: {said}", err=True, style="bold red")
        data(f"  fix: {fix}   # {why}", err=True)


def _listed_versions(client: Any, name: str) -> list[dict[str, Any]]:
    """Every version ListSecretVersionIds gives, deprecated ones included; a missing secret ends the command."""
    pages, token = [], None
    try:
        with aws_errors(name, client):
            while True:  # botocore has no paginator for ListSecretVersionIds
                page = client.list_secret_version_ids(
                    SecretId=name, IncludeDeprecated=True, **({"NextToken": token} if token else {})
                )
                pages.append(page)
                token = page.get("NextToken")
                if not token:
                    break
    except SecretNotFound as exc:
        if isinstance(exc, SecretDeleted):
            raise
        missing(client, name)
    return [v for page in pages for v in page.get("Versions", [])]


def _stage_problems(client: Any, name: str, listed: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """A stage on two versions, with its repair: AWS never leaves one, an emulator may (app/secrets/emulator.py)."""
    if not on_this_machine(client.meta.endpoint_url):
        return []
    from app.secrets.emulator import stage_repairs

    with aws_errors(name, client):
        return stage_repairs(
            client,
            name,
            {v["VersionId"]: v.get("VersionStages", []) for v in listed},
            {v["VersionId"]: v.get("CreatedDate") for v in listed},
        )
