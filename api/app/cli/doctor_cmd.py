"""``ecomind doctor``: every check an operator would run, in order, each with its fix."""

from __future__ import annotations

import difflib
import json
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import boto3
import botocore.exceptions
import psycopg
import typer
from rich.markup import escape

from ..secrets.aws import client_config, secretsmanager_endpoint
from ..secrets.dburl import parse_database_secret
from ..secrets.errors import SecretAccessDenied, SecretNotFound, SettingsError
from ..secrets.policy import check_example_value, check_jwt_secret, database_ssl
from ..secrets.refs import AwsRef
from ..secrets.store import SecretStore
from ..settings import Collected, collect
from .inventory import ROTATION_DAYS
from .output import err, out, print_json

__all__ = ["doctor", "least_privilege_statement"]


@dataclass
class Check:
    name: str
    status: str  # ok, fail, warn, skip
    detail: str
    fix: str = ""


def least_privilege_statement(arn: str, kms_key: str | None = None, *, complete: bool = False) -> dict[str, Any]:
    """The IAM policy that lets a role read exactly this secret (and decrypt it).

    Secrets Manager appends "-" and six random characters to a secret's name in its
    ARN; unless ``arn`` is known to be complete, the statement matches them.
    """
    resource = arn if complete else f"{arn}-??????"
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": resource}
    ]
    if kms_key:
        region = arn.split(":")[3]
        statements.append(
            {
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": kms_key,
                "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


class Doctor:
    def __init__(self, c: Collected, *, timeout: float, as_of: datetime) -> None:
        self.c = c
        self.timeout = timeout
        self.as_of = as_of
        self.checks: list[Check] = []
        self.session = boto3.session.Session()
        self.region = c.raw.get("AWS_REGION") or self.session.region_name
        self.endpoint = secretsmanager_endpoint()
        self.values: dict[str, str] = {}  # resolved secret values, never printed

    def add(self, name: str, status: str, detail: str, fix: str = "") -> None:
        self.checks.append(Check(name, status, detail, fix))

    def client(self, service: str, region: str | None = None) -> Any:
        return self.session.client(
            service, region_name=region or self.region, endpoint_url=self.endpoint, config=client_config(max_attempts=2)
        )

    # -- checks, in the order an operator would run them ------------------------------

    def run(self) -> list[Check]:
        aws_refs = {v: r for v, r in self.c.references.items() if isinstance(r, AwsRef)}
        for problem in self.c.problems:
            status = "fail" if problem.severity == "error" else "warn"
            self.add(
                f"configuration: {problem.variable}", status, f"{problem.message} (from {problem.source})", problem.fix
            )
        if aws_refs:
            self.credentials()
        if self.c.references:
            self.secrets()
        for variable in ("DATABASE_URL", "JWT_SECRET", "REDIS_URL"):
            if variable not in self.c.references and variable in self.c.raw:
                self.values[variable] = self.c.raw[variable]
        self.policy()
        self.database()
        if aws_refs and self.c.environment != "development":
            for variable, ref in aws_refs.items():
                self.rotation(variable, ref)
        return self.checks

    def credentials(self) -> None:
        creds = self.session.get_credentials()
        if creds is None:
            self.add(
                "AWS credentials",
                "fail",
                "no credentials found",
                "attach a task role (ECS) or IRSA role (EKS); locally set AWS_PROFILE or AWS_ACCESS_KEY_ID",
            )
        else:
            self.add("AWS credentials", "ok", f"found ({creds.method})")
        if self.region:
            source = "AWS_REGION" if self.c.raw.get("AWS_REGION") else "the AWS config"
            self.add("AWS region", "ok", f"{self.region} (from {source})")
        else:
            self.add("AWS region", "fail", "no region set", "set AWS_REGION, e.g. us-east-1")

    def secrets(self) -> None:
        """Read every referenced secret through the store the app uses, and classify failures."""
        with SecretStore(region=self.region, endpoint_url=self.endpoint) as store:
            resolved, errors = store.load_all(self.c.references.values())
        for variable, ref in self.c.references.items():
            name = f"{variable} readable"
            error = errors.get(ref)
            if error is None:
                got = resolved[ref]
                self.values[variable] = got.value.get_secret_value()
                self.add(name, "ok", f"{ref} (version {got.version_id or '?'})")
            elif isinstance(error, SecretAccessDenied) and isinstance(ref, AwsRef):
                self.denied(name, ref)
            elif isinstance(error, SecretNotFound) and isinstance(ref, AwsRef):
                self.not_found(name, ref)
            else:
                self.add(name, "fail", error.message, error.fix)

    def denied(self, name: str, ref: AwsRef) -> None:
        if ref.secret_id.startswith("arn:"):
            # An ARN copied from the console ends with the suffix; a partial one does not.
            complete = re.search(r"-[A-Za-z0-9]{6}$", ref.secret_id) is not None
            policy = least_privilege_statement(ref.secret_id, complete=complete)
        else:
            policy = least_privilege_statement(self.arn_for(ref))
        statement = json.dumps(policy, indent=2)
        self.add(
            name,
            "fail",
            f"{ref}: access denied to this role",
            "attach exactly this policy to the task role (not SecretsManagerReadWrite, which grants every secret "
            "in the account); add kms:Decrypt on the key if the secret uses a customer key:\n" + statement,
        )

    def arn_for(self, ref: AwsRef) -> str:
        account = "ACCOUNT_ID"
        try:
            account = str(self.client("sts").get_caller_identity()["Account"])
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
            pass
        return f"arn:aws:secretsmanager:{ref.region or self.region}:{account}:secret:{ref.secret_id}"

    def not_found(self, name: str, ref: AwsRef) -> None:
        secret_name = ref.secret_id.split(":secret:")[-1]
        here = ref.region or self.region
        elsewhere = self.search_regions(secret_name, here)
        if elsewhere:
            self.add(
                name,
                "fail",
                f"{ref}: not in {here}, but it exists in {', '.join(elsewhere)}",
                f"set AWS_REGION={elsewhere[0]} (or replicate the secret to {here})",
            )
            return
        similar = self.similar_names(secret_name, here)
        if similar:
            self.add(
                name,
                "fail",
                f"{ref}: not found in {here}; similar names there: {', '.join(similar)}",
                f"did you mean {similar[0]}? fix the name where the variable is set",
            )
            return
        self.add(
            name,
            "fail",
            f"{ref}: not found in {here} nor in any other region",
            "create it (`ecomind secrets provision`) or fix the name",
        )

    def regions(self) -> list[str]:
        try:
            found = self.client("ec2").describe_regions()["Regions"]
            return sorted(r["RegionName"] for r in found)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
            return sorted(self.session.get_available_regions("secretsmanager"))

    def search_regions(self, secret_name: str, here: str | None) -> list[str]:
        def look(region: str) -> str | None:
            try:
                self.client("secretsmanager", region).describe_secret(SecretId=secret_name)
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
                return None
            return region

        others = [r for r in self.regions() if r != here]
        with ThreadPoolExecutor(8) as pool:
            return [r for r in pool.map(look, others) if r]

    def similar_names(self, secret_name: str, region: str | None) -> list[str]:
        try:
            pages = self.client("secretsmanager", region).get_paginator("list_secrets").paginate()
            names = [s["Name"] for page in pages for s in page.get("SecretList", [])]
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
            return []
        return difflib.get_close_matches(secret_name, names, n=3, cutoff=0.75)

    def policy(self) -> None:
        env = self.c.environment
        db = self.values.get("DATABASE_URL")
        if db is not None:
            secret = parse_database_secret(db)
            if secret.url:
                _, ssl = database_ssl(env, secret.url)
                if ssl:
                    self.add("database SSL mode", "fail", f"DATABASE_URL: {ssl.message}", ssl.fix)
                else:
                    self.add("database SSL mode", "ok", "as the policy of " + env + " requires")
        for variable, is_url in (("DATABASE_URL", True), ("JWT_SECRET", False), ("REDIS_URL", True)):
            value = self.values.get(variable)
            if value is None:
                continue
            if variable == "DATABASE_URL":
                value = parse_database_secret(value).url or value
            finding = check_example_value(env, value, is_url=is_url)
            if finding:
                self.add(
                    f"{variable} example value",
                    "fail" if finding.severity == "error" else "warn",
                    f"{variable} {finding.message}",
                    finding.fix,
                )
        jwt = self.values.get("JWT_SECRET")
        if jwt is not None:
            weak = check_jwt_secret(env, jwt)
            if weak:
                self.add("JWT_SECRET strength", "fail", f"JWT_SECRET {weak.message}", weak.fix)
        if env != "development" and self.c.env_file_present:
            self.add(
                ".env file",
                "fail",
                f"a .env file is present in {env} (it is ignored, but it should not be here)",
                "remove it from the image or host: secrets there leak with the filesystem",
            )

    def database(self) -> None:
        raw = self.values.get("DATABASE_URL")
        if raw is None:
            self.add("database reachable", "skip", "DATABASE_URL could not be read")
            return
        url = parse_database_secret(raw).url
        url, _ = database_ssl(self.c.environment, url)
        try:
            parts = urlsplit(url)
            host, port = parts.hostname or "localhost", parts.port or 5432
        except ValueError:
            self.add("database reachable", "skip", "DATABASE_URL does not parse")
            return
        sg_fix = (
            f"allow TCP {port} to {host} from the tasks' security group: aws ec2 authorize-security-group-ingress "
            f"--group-id <database-sg> --protocol tcp --port {port} --source-group <ecs-tasks-sg>"
        )
        try:
            with socket.create_connection((host, port), timeout=self.timeout):
                pass
        except TimeoutError:
            self.add("database reachable", "fail", f"{host}:{port} did not answer within {self.timeout:g} s", sg_fix)
            return
        except OSError as exc:
            self.add(
                "database reachable",
                "fail",
                f"{host}:{port}: {exc.strerror or type(exc).__name__}",
                f"is the database up and listening on {port}? " + sg_fix,
            )
            return
        try:
            psycopg.connect(url, connect_timeout=int(max(1, self.timeout))).close()
        except psycopg.OperationalError as exc:
            text = str(exc)
            if "password authentication failed" in text:
                self.add(
                    "database login",
                    "fail",
                    f"{host}:{port}: wrong password for the role in DATABASE_URL",
                    "the secret's AWSCURRENT does not match the database: finish or rerun the rotation "
                    "(`ecomind secrets rotate NAME`), or set the role's password from the secret",
                )
            elif "does not support SSL" in text:
                self.add(
                    "database login",
                    "fail",
                    f"{host}:{port} refused SSL, which {self.c.environment} requires",
                    "enable SSL on the server (RDS: always on) or point DATABASE_URL at the right server",
                )
            else:
                first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
                self.add("database login", "fail", f"{host}:{port}: {first}", "see docs/troubleshooting.md")
            return
        self.add("database reachable", "ok", f"{host}:{port}, login and SSL as required")

    def rotation(self, variable: str, ref: AwsRef) -> None:
        try:
            meta = self.client("secretsmanager", ref.region).describe_secret(SecretId=ref.secret_id)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
            return  # already reported by the readability check
        days_policy = ROTATION_DAYS[self.c.environment]
        name = f"{variable} rotation"
        if not meta.get("RotationEnabled"):
            self.add(
                name,
                "fail",
                f"{ref}: rotation is off",
                f"ecomind secrets provision -e {self.c.environment} --enable-rotation --rotation-lambda-arn ARN",
            )
            return
        days = int(meta.get("RotationRules", {}).get("AutomaticallyAfterDays") or days_policy)
        last = meta.get("LastRotatedDate") or meta.get("CreatedDate")
        if days > days_policy:
            self.add(
                name,
                "fail",
                f"{ref}: rotates every {days} days; {self.c.environment} requires {days_policy}",
                f"set the schedule to {days_policy} days (`ecomind secrets provision --enable-rotation`)",
            )
            return
        if isinstance(last, datetime) and self.as_of - last > timedelta(days=days, hours=24):
            age = (self.as_of - last).days
            self.add(
                name,
                "fail",
                f"{ref}: last rotated {age} days ago, schedule is {days} days (overdue)",
                f"rotate now: ecomind secrets rotate {ref.secret_id}; then check the rotation function's logs",
            )
            return
        self.add(name, "ok", f"{ref}: every {days} days, last {last:%Y-%m-%d}" if isinstance(last, datetime) else "on")


def doctor(
    environment: Annotated[str | None, typer.Option("--environment", "-e", help="Overrides ENVIRONMENT.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    env_file: Annotated[Path, typer.Option("--env-file", help=".env read in development.")] = Path(".env"),
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the database.")] = 3.0,
    as_of: Annotated[
        datetime | None, typer.Option("--as-of", help="Judge rotation schedules as of this date (default: now).")
    ] = None,
) -> None:
    """Diagnose the configuration the way an operator would, each failure with its fix.

    Checks, in order: configuration, AWS credentials and region, each secret
    readable (a denial prints the exact least-privilege policy; a missing secret is
    looked for in the other regions and among similar names), SSL mode and example
    values per the environment's policy, .env in staging/production, the database
    (TCP, login, SSL), and rotation (on, within schedule). Exit 0 when all pass.

    Example: ENVIRONMENT=production AWS_REGION=us-east-1 ecomind doctor
    """
    try:
        collected = collect(environment=environment, env_file=env_file)
    except SettingsError as exc:
        checks = [Check(f"configuration: {p.variable}", "fail", p.message, p.fix) for p in exc.problems]
    else:
        when = (as_of.replace(tzinfo=as_of.tzinfo or UTC)) if as_of else datetime.now(UTC)
        checks = Doctor(collected, timeout=timeout, as_of=when).run()
    failed = any(c.status == "fail" for c in checks)
    if as_json:
        print_json({"ok": not failed, "checks": [asdict(c) for c in checks]})
    else:
        marks = {"ok": "[green] ok [/]", "fail": "[red]FAIL[/]", "warn": "[yellow]warn[/]", "skip": "[dim]skip[/]"}
        for c in checks:
            out.print(f"{marks[c.status]} {escape(c.name)}: {escape(c.detail)}")
            if c.fix and c.status in ("fail", "warn"):
                out.print("      fix: " + c.fix.replace("\n", "\n      "), markup=False)
        (err if failed else out).print("doctor: " + ("problems found" if failed else "all checks passed"))
    raise typer.Exit(1 if failed else 0)
