"""``ecomind secrets provision|list|describe``: the environment's secrets, never their values."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from ..secrets.aws import secretsmanager_client as secrets_client
from ..secrets.dburl import build_url
from ..secrets.policy import database_ssl
from ..settings import DEFAULT_PREFIXES
from .output import err, fail, out, print_json
from .secrets_cmd import app

__all__ = ["ROTATION_DAYS"]

ROTATION_DAYS = {"staging": 90, "production": 30}
PASSWORD_EXCLUDE = ":/@\"'\\"

Env = Annotated[str, typer.Option("--environment", "-e", help="staging or production.")]
Region = Annotated[str | None, typer.Option("--region", help="Default: AWS_REGION.")]


def _prefix(environment: str) -> str:
    if environment not in ROTATION_DAYS:
        raise typer.BadParameter("use staging or production", param_hint="--environment")
    return DEFAULT_PREFIXES[environment]  # type: ignore[index]


def _describe(client: Any, name: str) -> dict[str, Any] | None:
    try:
        return dict(client.describe_secret(SecretId=name))
    except client.exceptions.ResourceNotFoundException:
        return None


@dataclass
class Plan:
    dry_run: bool
    changed: int = 0

    def call(self, what: str, action: Any) -> None:
        if self.dry_run:
            out.print(f"  would call {what}", markup=False)
        else:
            action()
            out.print(f"  {what}: done", markup=False)
        self.changed += 1


@app.command("provision")
def provision(
    environment: Env,
    db_host: Annotated[str, typer.Option("--db-host", help="Database endpoint stored in the secret.")],
    region: Region = None,
    kms_key_id: Annotated[str | None, typer.Option("--kms-key-id", help="Customer KMS key for both secrets.")] = None,
    db_name: Annotated[str, typer.Option("--db-name")] = "ecomind",
    db_user: Annotated[str, typer.Option("--db-user")] = "ecomind_app",
    db_port: Annotated[int, typer.Option("--db-port")] = 5432,
    owner: Annotated[str, typer.Option("--owner", help="Value of the owner tag.")] = "ecomind-platform",
    enable_rotation: Annotated[bool, typer.Option("--enable-rotation", help="Turn rotation on.")] = False,
    rotation_lambda_arn: Annotated[str | None, typer.Option("--rotation-lambda-arn")] = None,
    rotation_days: Annotated[
        int | None, typer.Option("--rotation-days", help="Default: 30 in production, 90 in staging.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the calls, make none.")] = False,
) -> None:
    """Create {prefix}/database and {prefix}/jwt with generated values; a second run changes nothing.

    The database secret has the RDS rotation shape plus a connection_string built
    from the same fields; passwords come from GetRandomPassword. Both are tagged with
    the environment and the owner. No value is ever printed.

    Example: ecomind secrets provision -e staging --db-host db.internal --enable-rotation --rotation-lambda-arn ARN
    """
    prefix = _prefix(environment)
    if enable_rotation and not rotation_lambda_arn:
        raise typer.BadParameter("--enable-rotation needs --rotation-lambda-arn", param_hint="--rotation-lambda-arn")
    days = rotation_days or ROTATION_DAYS[environment]
    client = secrets_client(region)
    plan = Plan(dry_run)
    tags = [{"Key": "environment", "Value": environment}, {"Key": "owner", "Value": owner}]

    def database_value() -> str:
        password = client.get_random_password(PasswordLength=32, ExcludeCharacters=PASSWORD_EXCLUDE)["RandomPassword"]
        fields = {"engine": "postgres", "host": db_host, "port": db_port, "dbname": db_name, "username": db_user}
        url = build_url(username=db_user, password=password, host=db_host, port=str(db_port), dbname=db_name)
        url, _ = database_ssl(environment, url)  # type: ignore[arg-type]
        return json.dumps({**fields, "password": password, "connection_string": url})

    def jwt_value() -> str:
        return str(client.get_random_password(PasswordLength=64, ExcludePunctuation=True)["RandomPassword"])

    for name, make, description in (
        (f"{prefix}/database", database_value, f"EcoMind {environment} database credentials (RDS rotation shape)"),
        (f"{prefix}/jwt", jwt_value, f"EcoMind {environment} JWT signing secret"),
    ):
        with err.status(f"checking {name}"):
            meta = _describe(client, name)
        if meta is None:
            out.print(f"{name}: missing")
            kwargs: dict[str, Any] = {"Name": name, "Description": description, "Tags": tags}
            if kms_key_id:
                kwargs["KmsKeyId"] = kms_key_id
            shown = (
                f"CreateSecret(Name={name}{', KmsKeyId=' + kms_key_id if kms_key_id else ''}, tags environment/owner)"
            )
            plan.call(shown, lambda kwargs=kwargs, make=make: client.create_secret(SecretString=make(), **kwargs))
        else:
            out.print(f"{name}: exists, unchanged")
        if enable_rotation:
            current = meta or {}
            same = (
                current.get("RotationEnabled")
                and current.get("RotationLambdaARN") == rotation_lambda_arn
                and current.get("RotationRules", {}).get("AutomaticallyAfterDays") == days
            )
            if same:
                out.print(f"{name}: rotation every {days} days, unchanged")
            else:
                plan.call(
                    f"RotateSecret(SecretId={name}, every {days} days, RotateImmediately=false)",
                    lambda name=name: client.rotate_secret(
                        SecretId=name,
                        RotationLambdaARN=rotation_lambda_arn,
                        RotationRules={"AutomaticallyAfterDays": days},
                        RotateImmediately=False,
                    ),
                )
    if plan.changed == 0:
        out.print("nothing to do: every secret exists as asked")
    elif dry_run:
        out.print(f"dry run: {plan.changed} call(s) would be made")


def _rotation(meta: dict[str, Any]) -> dict[str, Any]:
    last = meta.get("LastRotatedDate")
    days = meta.get("RotationRules", {}).get("AutomaticallyAfterDays")
    nxt = meta.get("NextRotationDate") or (last + timedelta(days=days) if last and days else None)
    return {
        "rotation": "on" if meta.get("RotationEnabled") else "off",
        "every_days": days,
        "last_rotated": last.astimezone(UTC).isoformat() if isinstance(last, datetime) else None,
        "next_rotation": nxt.astimezone(UTC).isoformat() if isinstance(nxt, datetime) else None,
    }


def _stages(meta: dict[str, Any]) -> list[str]:
    mapping = meta.get("VersionIdsToStages") or meta.get("SecretVersionsToStages") or {}
    return sorted({stage for stages in mapping.values() for stage in stages})


@app.command("list")
def list_(
    environment: Annotated[
        str | None, typer.Option("--environment", "-e", help="Only this environment's prefix.")
    ] = None,
    region: Region = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List EcoMind's secrets with their stages and rotation; never a value.

    Example: ecomind secrets list -e production
    """
    client = secrets_client(region)
    prefix = _prefix(environment) + "/" if environment else "ecomind/"
    rows = []
    for page in client.get_paginator("list_secrets").paginate(
        Filters=[{"Key": "name", "Values": [prefix]}], IncludePlannedDeletion=False
    ):
        for meta in page.get("SecretList", []):
            if meta["Name"].startswith(prefix):
                rows.append({"name": meta["Name"], "stages": _stages(meta), **_rotation(meta)})
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"secrets under {prefix}")
    for column in ("name", "stages", "rotation", "every", "last rotated", "next rotation"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["name"],
            ",".join(r["stages"]),
            r["rotation"],
            str(r["every_days"] or "-"),
            r["last_rotated"] or "-",
            r["next_rotation"] or "-",
        )
    out.print(table)


@app.command("describe")
def describe(
    name: Annotated[str, typer.Argument(help="Secret name or ARN.")],
    region: Region = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show one secret's versions, stages, tags and rotation; never a value.

    Example: ecomind secrets describe ecomind/prod/database
    """
    client = secrets_client(region)
    meta = _describe(client, name)
    if meta is None:
        raise fail(f"secret {name} not found in {client.meta.region_name}; `ecomind doctor` searches other regions")
    data = {
        "name": meta["Name"],
        "arn": meta["ARN"],
        "kms_key": meta.get("KmsKeyId", "aws/secretsmanager (AWS managed)"),
        "tags": {t["Key"]: t["Value"] for t in meta.get("Tags", [])},
        "versions": {v: sorted(s) for v, s in (meta.get("VersionIdsToStages") or {}).items() if s},
        "rotation_lambda": meta.get("RotationLambdaARN"),
        **_rotation(meta),
    }
    if as_json:
        print_json(data)
        return
    for key, value in data.items():
        out.print(f"{key:16} {value if value not in (None, {}) else '-'}", markup=False)
