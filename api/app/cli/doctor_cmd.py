"""``ecomind doctor``: the checks ``load_settings`` runs, then what needs AWS or the network.

The configuration verdicts are the inspection of :func:`app.settings.loading.inspect_settings`,
the very checks the API runs at start; the doctor adds only what they cannot know:
AWS credentials (found, and taken: sts:GetCallerIdentity, which IAM never denies) and
region, why a secret could not be read (the least-privilege
policy for a denial, other regions and similar names for a missing secret), the
database (DNS, TCP, login, SSL), and rotation (on, on schedule, none left unfinished).
A check that could not run (a denied DescribeSecret, say) is reported as not checked,
never as passed, and the exit code says so (8 when nothing failed but something was
not checked).
"""

from __future__ import annotations

import difflib
import json
import re
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

import typer

from app.cli.fixes import (
    DB_HOST_PLACEHOLDER,
    MASTER_URL_FILE_PLACEHOLDER,
    by_operator,
    by_rotation_role,
    master_url_note,
    secrets_command,
)
from app.cli.options import EnvFileOpt, EnvironmentOpt, JsonOpt, value_of
from app.cli.output import ExitCode, Verbatim, data, fail, print_json, say
from app.cli.postgres_cmd import ssl_fix
from app.secrets.environment import API_SECRET_ACTIONS, POSTGRES_PORT, SECRET_VARIABLES
from app.secrets.errors import (
    BadCredentials,
    EmulatorFailed,
    InvalidRegion,
    NoCredentials,
    NoRegion,
    ResolutionError,
    SecretAccessDenied,
    SecretDeleted,
    SecretNotFound,
    SecretsManagerUnreachable,
    SettingsError,
)
from app.secrets.refs import AwsRef
from app.secrets.regions import REGION_PLACEHOLDER

if TYPE_CHECKING:
    from app.settings.loading import Inspection

__all__ = ["doctor"]

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


def least_privilege_statement(arn: str, kms_key: str | None = None, *, complete: bool = False) -> dict[str, Any]:
    """The IAM policy that lets a role read exactly this secret (and decrypt it), as the API
    role reads it: its value, and the rotation state the doctor checks, so that once attached
    every check of the secret runs (deploy/iam/api-task-role.policy.json, the model's
    API_SECRET_ACTIONS).

    Secrets Manager appends "-" and six random characters to a secret's name in its
    ARN; unless ``arn`` is known to be complete, the statement matches them.
    """
    resource = arn if complete else f"{arn}-??????"
    statements: list[dict[str, Any]] = [{"Effect": "Allow", "Action": list(API_SECRET_ACTIONS), "Resource": resource}]
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


def _denied(exc: BaseException) -> bool:
    """A policy refused the call (the secret layer's translator reads the codes): missing or
    refused credentials are not a denial, and no policy would fix them."""
    from app.secrets.aws import translate_error

    error = translate_error(exc, "", "")
    return isinstance(error, SecretAccessDenied) and not isinstance(error, NoCredentials | BadCredentials)


def _regional_failure(exc: BaseException) -> bool:
    """The region did not answer (connection, timeout, 5xx, throttled): not a fact about the
    secret. The secret layer's rule, on the error it would raise for ``exc``."""
    from app.secrets.aws import regional_failure, translate_error

    return regional_failure(translate_error(exc, "", ""))


class Doctor:
    def __init__(
        self, insp: Inspection, *, timeout: float, as_of: datetime, secrets: tuple[str, ...] = SECRET_VARIABLES
    ) -> None:

        from app.secrets.aws import new_session
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

        from app.secrets.aws import translate_error

        try:
            return self.session.get_config_variable("region")  # type: ignore[no-any-return]
        except botocore.exceptions.BotoCoreError as exc:
            self.unusable = translate_error(exc, "the secrets", "AWS")
            return None

    def add(self, name: str, status: Status, detail: str, fix: str = "") -> None:
        self.checks.append(Check(name, status, detail, fix))

    def client(self, service: str, region: str | None = None) -> Any:
        from app.secrets.aws import client_config

        endpoint = self.endpoint if service == "secretsmanager" else None
        return self.session.create_client(
            service, region_name=region or self.region, endpoint_url=endpoint, config=client_config(2)
        )

    # -- in the order an operator would look ------------------------------------------

    def run(self) -> list[Check]:
        c = self.insp.collected
        aws_refs = {v: r for v, r in c.references.items() if isinstance(r, AwsRef)}
        reported = 0
        for p in self.insp.problems:
            error = self.insp.errors.get(p.variable)
            if error is not None and p.message == error.message:
                continue  # diagnosed below, with what only the doctor can find out
            reported += 1
            self.add(
                f"configuration: {p.variable}",
                "fail" if p.severity == "error" else "warn",
                f"{p.message} (from {p.source})",
                p.fix,
            )
        if not reported:
            self.add("configuration", "ok", f"every value as {self.m.name}'s policy requires")
        if aws_refs:
            self.credentials()
        for variable, ref in c.references.items():
            self.readable(variable, ref)
        if "DATABASE_URL" in self.secrets:
            self.database()
        if "REDIS_URL" in self.secrets:
            self.redis()
        if aws_refs and self.m.deployed:
            for variable, ref in aws_refs.items():
                if variable in self.insp.resolved:
                    self.rotation(variable, ref)
                else:
                    self.unread(variable, ref)
        return self.checks

    def credentials(self) -> None:
        import botocore.exceptions

        from app.secrets.aws import translate_error

        creds = None
        if self.unusable is None:
            try:
                creds = self.session.get_credentials()
            except botocore.exceptions.BotoCoreError as exc:
                self.unusable = translate_error(exc, "the secrets", "AWS")
        if self.unusable is not None:
            self.add("AWS credentials", "fail", self.unusable.message, self.unusable.fix)
        elif creds is None:
            self.add(
                "AWS credentials",
                "fail",
                "no credentials found (environment, profile, container or instance role)",
                "export AWS_PROFILE=NAME   # locally; in ECS or EKS attach a task role or an IRSA role",
            )
        else:
            self.caller(creds.method)
        invalid = self.invalid_region()
        if invalid is not None:
            self.add("AWS region", "fail", invalid.message, invalid.fix)
        elif self.region:
            source = "AWS_REGION" if self.insp.collected.raw.get("AWS_REGION") else "the AWS config"
            self.add("AWS region", "ok", f"{self.region} (from {source})")
        elif self.unusable is not None:
            self.add("AWS region", "not_checked", "the AWS config could not be read (see AWS credentials)")
        else:
            fix = f"export AWS_REGION={REGION_PLACEHOLDER}   # the region of your secrets"
            self.add("AWS region", "fail", "no region set", fix)

    def invalid_region(self) -> ResolutionError | None:
        """The region botocore would refuse to make a client for (``eu-west-1 `` with a blank), said."""
        import botocore.exceptions
        import botocore.utils

        from app.secrets.aws import translate_error

        try:
            botocore.utils.validate_region_name(self.region)
        except botocore.exceptions.InvalidRegionError as exc:
            return translate_error(exc, "the secrets", "AWS")
        return None

    def caller(self, method: str) -> None:
        """Credentials found: does AWS take them? IAM never denies sts:GetCallerIdentity, so
        when it fails the credentials themselves are refused (or STS did not answer)."""
        import botocore.exceptions

        from app.secrets.aws import translate_error

        try:
            self.identity = dict(self.client("sts").get_caller_identity())
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            error = translate_error(exc, "sts:GetCallerIdentity", "STS")
            if isinstance(error, BadCredentials):
                self.add("AWS credentials", "fail", f"found ({method}), but refused: {error.message}", error.fix)
                return
            why = f"sts:GetCallerIdentity failed ({type(exc).__name__})"
            references = self.insp.collected.references
            if any(isinstance(references.get(v), AwsRef) for v in self.insp.resolved):
                # A secret was read with them: they work, whatever STS said (it may be out of reach in a VPC).
                self.add("AWS credentials", "ok", f"found ({method}), Secrets Manager accepted them; {why}")
            else:
                self.add("AWS credentials", "not_checked", f"found ({method}); whether AWS takes them: {why}")
            return
        self.add("AWS credentials", "ok", f"{self.identity.get('Arn', '?')} (from {method})")

    def readable(self, variable: str, ref: Any) -> None:
        name = f"{variable} readable"
        got = self.insp.resolved.get(variable)
        if got is not None:
            home = ref.region or self.region if isinstance(ref, AwsRef) else None
            where = f", read in the replica region {got.region}" if got.region and home and got.region != home else ""
            self.add(name, "ok", f"{ref} (version {got.version_id or '-'}{where})")
            return
        error = self.insp.errors.get(variable)
        if error is None:
            return
        if isinstance(error, NoCredentials):
            self.add(name, "fail", f"{ref}: not read, there are no AWS credentials", "see the AWS credentials check")
        elif isinstance(error, BadCredentials):
            self.add(name, "fail", f"{ref}: not read, AWS refused the credentials (see AWS credentials)", error.fix)
        elif isinstance(error, InvalidRegion):
            self.add(name, "fail", f"{ref}: not read, the AWS region is no region name (see AWS region)", error.fix)
        elif isinstance(error, NoRegion):
            self.add(name, "fail", f"{ref}: not read, no AWS region is set", f"export AWS_REGION={REGION_PLACEHOLDER}")
        elif isinstance(error, SecretAccessDenied) and isinstance(ref, AwsRef):
            self.denied(name, ref)
        elif isinstance(error, SecretDeleted) and isinstance(ref, AwsRef):
            self.deleted(name, ref)
        elif isinstance(error, SecretNotFound) and isinstance(ref, AwsRef):
            self.not_found(name, ref)
        elif isinstance(error, EmulatorFailed):
            self.add(name, "fail", error.message, error.fix)
        elif isinstance(error, SecretsManagerUnreachable):
            self.add(name, "fail", error.message, "check AWS_REGION / AWS_ENDPOINT_URL, the VPC endpoint or NAT route")
        else:
            self.add(name, "fail", error.message, _own_fix(error))

    def denied(self, name: str, ref: AwsRef) -> None:
        if ref.secret_id.startswith("arn:"):
            # An ARN copied from the console ends with the suffix; a partial one does not.
            complete = re.search(r"-[A-Za-z0-9]{6}$", ref.secret_id) is not None
            policy = least_privilege_statement(ref.secret_id, complete=complete)
            account_known = True
        else:
            arn, account_known = self.arn_for(ref)
            policy = least_privilege_statement(arn)
        statement = json.dumps(policy, indent=2)
        fix = (
            "attach exactly this policy to the role: the API role's grant on this secret (its value, and the "
            "rotation state the doctor checks), not SecretsManagerReadWrite, which grants every secret in the "
            "account; add kms:Decrypt on the key if the secret uses a customer key"
        )
        if not account_known:
            fix += " (sts:GetCallerIdentity did not answer: put your account id in place of ACCOUNT_ID)"
        self.add(name, "fail", f"{ref}: access denied to this role", fix + ":\n" + statement)

    def arn_for(self, ref: AwsRef) -> tuple[str, bool]:

        region = ref.region or self.region
        account = (self.identity or {}).get("Account")
        if not account:  # the credentials check could not tell: the policy still says what to grant
            return f"arn:aws:secretsmanager:{region}:ACCOUNT_ID:secret:{ref.secret_id}", False
        return f"arn:aws:secretsmanager:{region}:{account}:secret:{ref.secret_id}", True

    def deleted(self, name: str, ref: AwsRef) -> None:
        import botocore.exceptions

        from app.cli.secrets_cmd import deletion_notice

        when = "scheduled for deletion"
        try:
            meta = self.client("secretsmanager", ref.region).describe_secret(SecretId=ref.secret_id)
            when = deletion_notice(meta) or when
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
            pass
        restore = secrets_command(f"restore {ref.secret_id}", ref.region or self.region, note=by_operator(self.m))
        self.add(name, "fail", f"{ref}: {when}", restore)

    def not_found(self, name: str, ref: AwsRef) -> None:
        secret_name = ref.secret_id.split(":secret:")[-1]
        here = ref.region or self.region
        if self.exists(ref):
            stage = ref.version_stage or "AWSCURRENT"
            self.add(
                name,
                "fail",
                f"{ref}: the secret exists in {here} but no version of it is staged {stage} (it has no value yet)",
                "printf '%s' \"$VALUE\" | "
                + secrets_command(f"set {ref.secret_id}", here, note="VALUE: its value; " + by_operator(self.m)),
            )
            return
        elsewhere, looked = self.search_regions(secret_name, here)
        if elsewhere:
            self.add(
                name,
                "fail",
                f"{ref}: not in {here}, but it exists in {', '.join(elsewhere)}",
                f"export AWS_REGION={elsewhere[0]}   # or replicate the secret to {here}",
            )
            return
        variable = name.split()[0]
        similar, listed = self.similar_names(secret_name, here, variable)
        if similar:
            self.add(
                name,
                "fail",
                f"{ref}: not found in {here}; similar names there: {', '.join(similar)}",
                f"export {variable}=aws-secretsmanager:{similar[0]}   # did you mean {similar[0]}?",
            )
            return
        searched = f"{looked} other region(s)" if looked else "no other region (the lookups were denied)"
        detail = f"{ref}: not found in {here}; searched {searched}"
        if not listed:
            detail += "; similar names not checked: secretsmanager:ListSecrets denied"
        default = self.m.default_reference(variable)
        if default is not None and default == str(ref):
            options = f"--environment {self.m.name}"
            database = self.m.default_reference("DATABASE_URL")
            database_missing = any(
                str(r) == database and isinstance(self.insp.errors.get(v), SecretNotFound)
                for v, r in self.insp.collected.references.items()
            )
            if database_missing:  # creating the database secret needs its endpoint
                options += f" --db-host {DB_HOST_PLACEHOLDER}"
            fix = secrets_command(f"provision {options}", here, note=by_operator(self.m))
        else:
            fix = f"export {variable}=aws-secretsmanager:EXISTING_NAME   # or create {secret_name}"
        self.add(name, "fail", detail, fix)

    def exists(self, ref: AwsRef) -> bool:
        import botocore.exceptions

        try:
            self.client("secretsmanager", ref.region).describe_secret(SecretId=ref.secret_id)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
            return False
        return True

    def regions(self) -> list[str]:
        return sorted(self.session.get_available_regions("secretsmanager"))

    def search_regions(self, secret_name: str, here: str | None) -> tuple[list[str], int]:
        """Regions where the name exists, and how many regions could be looked at."""
        from app.secrets.aws import regions_holding

        others = [r for r in self.regions() if r != here]
        return regions_holding(secret_name, others, lambda region: self.client("secretsmanager", region))

    def similar_names(self, secret_name: str, region: str | None, variable: str) -> tuple[list[str], bool]:
        import botocore.exceptions

        try:
            pages = self.client("secretsmanager", region).get_paginator("list_secrets").paginate()
            names = [s["Name"] for page in pages for s in page.get("SecretList", [])]
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
            return [], False
        # The secrets of the environment's other variables are not typos of this one's
        # (the JWT secret is not a misspelt database secret).
        others = {self.m.secret_name(spec.key) for spec in self.m.secrets if spec.variable != variable}
        candidates = [n for n in names if n not in others and n != secret_name]
        return difflib.get_close_matches(secret_name, candidates, n=3, cutoff=0.8), True

    def database(self) -> None:
        from app.data.failures import classify

        url = self.insp.values.get("DATABASE_URL")
        if url is None or "DATABASE_URL" in self.insp.invalid:
            why = "is invalid" if url is not None else "could not be read"
            self.add("database", "not_checked", f"DATABASE_URL {why} (see above): no host to try")
            return
        source = self.insp.collected.source("DATABASE_URL")
        try:
            parts = urlsplit(url)
            host, port = parts.hostname or "localhost", parts.port or POSTGRES_PORT
        except ValueError:
            self.add("database", "not_checked", "DATABASE_URL does not parse (see above)")
            return
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror:
            self.add(
                "database host",
                "fail",
                f"{host} does not resolve (DNS; in a VPC, an RDS endpoint resolves only inside it)",
                f"ecomind config show   # the host of DATABASE_URL, from {source}",
            )
            return
        deployed = self.m.deployed
        ingress = (
            f"aws ec2 authorize-security-group-ingress --group-id DATABASE_SG --protocol tcp --port {port} "
            "--source-group TASKS_SG"
        )
        try:
            with socket.create_connection((host, port), timeout=self.timeout):
                pass
        except TimeoutError:
            self.add(
                "database reachable",
                "fail",
                f"{host}:{port} did not answer within {self.timeout:g} s",
                ingress if deployed else f"is a firewall dropping {host}:{port}?",
            )
            return
        except OSError as exc:
            self.add(
                "database reachable",
                "fail",
                f"{host}:{port}: {exc.strerror or type(exc).__name__}",
                "make run   # starts a project-local PostgreSQL on the port of .env"
                if not deployed
                else f"check the endpoint and port in DATABASE_URL (from {source})",
            )
            return
        import psycopg

        from app.data.engine import connect_args

        try:
            psycopg.connect(**connect_args(url), connect_timeout=int(max(1, self.timeout))).close()
        except psycopg.Error as exc:
            failure = classify(exc)
            detail = f"{host}:{port}: {failure.summary}"
            if failure.kind == "auth" and deployed:
                # The stored password is not the role's: a rotation with the master user's help sets a
                # new one in both (it also finishes a half-done rotation).
                # The master user's URL goes in a file (or a prompt), never on the command line.
                ref = self.insp.collected.references.get("DATABASE_URL")
                secret = ref.secret_id if isinstance(ref, AwsRef) else self.m.secret_name("database")
                fix = secrets_command(
                    f"rotate {secret} --local --master-url-file {MASTER_URL_FILE_PLACEHOLDER}",
                    (ref.region if isinstance(ref, AwsRef) else None) or self.region,
                    note=f"{master_url_note(f'{host}:{port}')}; {by_rotation_role(self.m)}, where the database is "
                    "reachable",
                )
            elif failure.kind == "auth":
                fix = (
                    f"the password in DATABASE_URL (from {source}) is not the role's: if another PostgreSQL "
                    f"listens on {port}, point .env at a free port and run make run again"
                )
            elif failure.kind == "ssl":
                fix = ssl_fix(host, self.m.name)
            elif failure.kind == "no_database":
                fix = f"create it: CREATE DATABASE {parts.path.lstrip('/') or 'NAME'} OWNER {parts.username or 'USER'};"
            else:
                fix = "docs/troubleshooting.md"
            self.add("database login", "fail", detail, fix)
            return
        self.add("database reachable", "ok", f"{host}:{port}, login and SSL as {self.m.name} requires")

    def redis(self) -> None:
        url = self.insp.values.get("REDIS_URL")
        if url is None or "REDIS_URL" in self.insp.invalid:
            return
        import redis

        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=self.timeout, socket_timeout=self.timeout)
            client.ping()
            client.close()
        except redis.AuthenticationError:
            self.add("redis", "fail", "Redis refused the password in REDIS_URL", "check the password in REDIS_URL")
        except (redis.RedisError, OSError, ValueError) as exc:
            where = urlsplit(url).netloc.rpartition("@")[2]
            fix = (
                "make run   # starts the project's Redis where .env points"
                if not self.m.deployed
                else ("check the ElastiCache endpoint in REDIS_URL and that its security group admits the tasks")
            )
            self.add("redis", "fail", f"{where}: {type(exc).__name__} (the API's /ready answers 503)", fix)
        else:
            self.add("redis", "ok", "answers PING")
            self.redis_eviction(url)

    def redis_eviction(self, url: str) -> None:
        import redis

        from app.auth.revocations import eviction_check

        client = redis.Redis.from_url(url, socket_connect_timeout=self.timeout, socket_timeout=self.timeout)
        try:
            found = eviction_check(client, url)
        finally:
            client.close()
        self.add("redis eviction", found.status, found.detail, found.fix)

    def rotation(self, variable: str, ref: AwsRef) -> None:
        import botocore.exceptions

        name, pending = f"{variable} rotation", f"{variable} pending version"
        home = ref.region or self.region
        got = self.insp.resolved.get(variable)
        if got is not None and got.region and home and got.region != home and home not in self.down:
            self.down[home] = f"its reads failed over to {got.region}"
        if home in self.down:
            self.primary_down(variable, ref, home)
            return
        try:
            meta = self.client("secretsmanager", ref.region).describe_secret(SecretId=ref.secret_id)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            from app.secrets.aws import translate_error

            error = translate_error(exc, str(ref), self.endpoint or "")
            if isinstance(error, EmulatorFailed):  # no region is down: the emulator failed
                for check in ROTATION_CHECKS:
                    self.add(f"{variable} {check}", "not_checked", f"{error.message} (DescribeSecret)", error.fix)
                return
            if _regional_failure(exc):
                self.down[home] = f"DescribeSecret: {type(exc).__name__}"
                self.primary_down(variable, ref, home)
                return
            if _denied(exc):
                self.add(name, "not_checked", f"{ref}: secretsmanager:DescribeSecret denied to this role")
            else:
                self.add(name, "not_checked", f"{ref}: DescribeSecret failed ({type(exc).__name__})")
            # The rotation window and the stages are in what DescribeSecret returns: neither can be judged.
            self.add(pending, "not_checked", f"{ref}: DescribeSecret failed, see above")
            self.add(f"{variable} stages", "not_checked", f"{ref}: DescribeSecret failed, see above")
            return
        versions, unlisted = self.versions(ref)
        self.primary(variable, ref, meta)
        self.stages(variable, ref, meta, None if unlisted else versions)
        self.replication(variable, ref, meta)
        self.schedule(name, ref, meta, versions)
        self.pending(pending, variable, ref, meta, versions, unlisted)

    def primary(self, variable: str, ref: AwsRef, meta: dict[str, Any]) -> None:
        """Said only when the region read holds a replica: reads work there, writes do not."""
        primary, here = meta.get("PrimaryRegion"), ref.region or self.region
        if not primary or primary == here:
            return
        source = "its ARN" if ref.region else "AWS_REGION"
        self.add(
            f"{variable} primary region",
            "warn",
            f"{ref}: {here} (from {source}) holds a replica of the secret, whose primary region is {primary}: "
            f"reads are served here; writes (ecomind secrets set, rotate, provision) go to {primary} only",
            f"export AWS_REGION={primary}   # the primary region; list {here} in SECRETS_REPLICA_REGIONS, where "
            "reads fail over",
        )

    def stages(self, variable: str, ref: AwsRef, meta: dict[str, Any], versions: list[dict[str, Any]] | None) -> None:
        """Each of Secrets Manager's stages on one version at most (an emulator may break that).
        ``versions``: ListSecretVersionIds' answer (with dates), None when it may not be listed."""
        import botocore.exceptions

        from app.cli.secrets_cmd import stage_repairs

        name = f"{variable} stages"
        if versions is None:
            stages, created = dict(meta.get("VersionIdsToStages") or {}), {}
        else:
            stages = {v["VersionId"]: v.get("VersionStages", []) for v in versions}
            created = {v["VersionId"]: v.get("CreatedDate") for v in versions}
        try:
            problems = stage_repairs(self.client("secretsmanager", ref.region), ref.secret_id, stages, created)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            self.add(name, "not_checked", f"{ref}: {type(exc).__name__}")
            return
        if problems:
            said = "; ".join(p[0] for p in problems)
            fix = " && ".join(p[1] for p in problems) + "   # " + "; ".join(p[2] for p in problems)
            self.add(name, "fail", f"{ref}: impossible: {said}", fix)
            return
        self.add(name, "ok", f"{ref}: each stage on one version")

    def unread(self, variable: str, ref: AwsRef) -> None:
        """The secret could not be read (denied, deleted, missing...): its rotation checks did
        not run, and say so (never dropped, never passed)."""
        error = self.insp.errors.get(variable)
        why = "it is scheduled for deletion" if isinstance(error, SecretDeleted) else "it could not be read"
        for check in ROTATION_CHECKS:
            self.add(f"{variable} {check}", "not_checked", f"{ref}: {why} (see {variable} readable)")

    def primary_down(self, variable: str, ref: AwsRef, home: str | None) -> None:
        """The secret's primary region does not answer: what each replica region says instead.

        Rotation and replication status are kept by the primary only, so those checks are
        reported as not run; each region of SECRETS_REPLICA_REGIONS is asked whether it
        holds a replica (DescribeSecret there), which is what reads fail over to."""
        import botocore.exceptions

        from app.secrets.aws import in_region
        from app.secrets.regions import parse_regions

        why = f"{home} did not answer ({self.down[home]})"
        again = f"ecomind doctor   # again once {home} answers"
        for check in ROTATION_CHECKS:
            self.add(f"{variable} {check}", "not_checked", f"{ref}: {why}; kept by the primary region", again)
        wanted, _ = parse_regions(self.insp.collected.raw.get("SECRETS_REPLICA_REGIONS"))
        if not wanted:
            detail = f"{ref}: {why}, and SECRETS_REPLICA_REGIONS lists no replica region to read instead"
            self.add(f"{variable} replicas", "fail", detail, again)
            return
        answers: dict[str, str] = {}
        for region in wanted:
            if region in self.down:
                answers[region] = f"did not answer ({self.down[region]})"
                continue
            secret_id = in_region(ref, region).secret_id  # a replica's ARN differs by its region
            try:
                self.client("secretsmanager", region).describe_secret(SecretId=secret_id)
                answers[region] = "holds a replica"
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
                if _regional_failure(exc):
                    self.down[region] = f"DescribeSecret: {type(exc).__name__}"
                    answers[region] = f"did not answer ({type(exc).__name__})"
                elif _denied(exc):
                    answers[region] = "DescribeSecret denied to this role"
                elif isinstance(exc, botocore.exceptions.ClientError) and "NotFound" in str(
                    exc.response.get("Error", {}).get("Code", "")
                ):
                    answers[region] = "has no replica"
                else:
                    answers[region] = f"DescribeSecret failed ({type(exc).__name__})"
        served = [r for r, a in answers.items() if a == "holds a replica"]
        detail = f"{ref}: {why}; " + "; ".join(f"{r} {a}" for r, a in answers.items())
        if served:
            detail += f" (reads are served from {served[0]})"
        self.add(f"{variable} replicas", "warn" if served else "fail", detail, again)

    def schedule(self, name: str, ref: AwsRef, meta: dict[str, Any], versions: list[dict[str, Any]]) -> None:
        """Rotation on, at the environment's period, and not overdue."""
        days_policy = self.m.rotation_days or 0
        region = ref.region or self.region
        options, note = f"--environment {self.m.name} --enable-rotation", by_operator(self.m)
        if self.emulator:
            # An endpoint on this machine is an emulator, which runs no rotation function:
            # the fix says which driver it chose and why, never silently. (AWS_ENDPOINT_URL
            # is also how VPC or FIPS endpoints are set: those keep the functions.)
            options += " --rotation-driver local"
            note = "AWS_ENDPOINT_URL is on this machine: an emulator runs no functions; " + note
        enable = secrets_command(f"provision {options}", region, note=note)
        if not meta.get("RotationEnabled"):
            self.add(name, "fail", f"{ref}: rotation is off", enable)
            return
        from app.rotation.schedule import last_rotated, next_rotation
        from app.secrets.environment import rotation_window

        days = int(meta.get("RotationRules", {}).get("AutomaticallyAfterDays") or days_policy)
        last = last_rotated(meta, versions)
        due = next_rotation(meta, last, days_policy)
        if days > days_policy:
            self.add(
                name,
                "fail",
                f"{ref}: rotates every {days} days; {self.m.name} requires {days_policy}",
                enable,
            )
            return
        window, _ = rotation_window(meta.get("RotationRules", {}))
        if isinstance(last, datetime) and due is not None and self.as_of > due + timedelta(hours=window):
            age = (self.as_of - last).days
            self.add(
                name,
                "fail",
                f"{ref}: last rotated {age} days ago, schedule is {days} days (overdue)",
                secrets_command(f"rotate {ref.secret_id} --local", region, note=by_rotation_role(self.m))
                if self.emulator
                else secrets_command(f"rotate {ref.secret_id}", region, note=by_operator(self.m)),
            )
            return
        when = f", last {last:%Y-%m-%d}" if isinstance(last, datetime) else ""
        when += f", next {due:%Y-%m-%d}" if due is not None else ""
        self.add(name, "ok", f"{ref}: every {days} days{when}")

    def replication(self, variable: str, ref: AwsRef, meta: dict[str, Any]) -> None:
        """Each replica region the settings read from (SECRETS_REPLICA_REGIONS), and its state."""
        from app.secrets.regions import parse_regions

        wanted, _ = parse_regions(self.insp.collected.raw.get("SECRETS_REPLICA_REGIONS"))
        status = {r.get("Region"): r for r in meta.get("ReplicationStatus", [])}
        if not wanted and not status:
            return
        name = f"{variable} replicas"
        missing = [r for r in wanted if r not in status]
        if missing:
            self.add(
                name,
                "fail",
                f"{ref}: not replicated to {', '.join(missing)}, which SECRETS_REPLICA_REGIONS lists",
                secrets_command(
                    f"provision --environment {self.m.name} " + " ".join(f"--replica-region {r}" for r in missing),
                    ref.region or self.region,
                    note=by_operator(self.m),
                ),
            )
            return
        lagging = {r: s for r, s in status.items() if s.get("Status") != "InSync"}
        if lagging:
            region, state = next(iter(lagging.items()))
            self.add(
                name,
                "fail" if state.get("Status") == "Failed" else "warn",
                f"{ref}: the replica in {region} is {state.get('Status')}: {state.get('StatusMessage', '')}",
                secrets_command(f"describe {ref.secret_id}", ref.region or self.region)
                + "   # then, if it failed: aws secretsmanager remove-regions-from-replication "
                f"--secret-id {ref.secret_id} --remove-replica-regions {region}, and provision it again",
            )
            return
        shown = ", ".join(f"{r} (InSync)" for r in status)
        self.add(name, "ok", f"{ref}: replicated to {shown}")

    def versions(self, ref: AwsRef) -> tuple[list[dict[str, Any]], str | None]:
        """The secret's staged versions with their dates (ListSecretVersionIds), or why they could not be listed."""
        import botocore.exceptions

        try:
            answer = self.client("secretsmanager", ref.region).list_secret_version_ids(SecretId=ref.secret_id)
        except botocore.exceptions.ClientError as exc:
            if _denied(exc):
                return [], "secretsmanager:ListSecretVersionIds denied to this role"
            return [], f"ListSecretVersionIds failed ({exc.response.get('Error', {}).get('Code', 'ClientError')})"
        except botocore.exceptions.BotoCoreError as exc:
            return [], f"ListSecretVersionIds failed ({type(exc).__name__})"
        return list(answer.get("Versions", [])), None

    def pending(
        self,
        name: str,
        variable: str,
        ref: AwsRef,
        meta: dict[str, Any],
        versions: list[dict[str, Any]],
        unlisted: str | None,
    ) -> None:
        """A rotation left unfinished: a version AWSPENDING without AWSCURRENT, older than the rotation window.

        Secrets Manager refuses every later RotateSecret while it stays (and, in a single-user
        database rotation stopped after setSecret, only that version's password logs in), so
        the fix resumes it: the local driver reuses the pending version, or discards it when it
        no longer matches AWSCURRENT, and runs the remaining steps.
        """
        from app.rotation.protocol import pending_version
        from app.secrets.environment import rotation_window

        if unlisted is not None:
            self.add(name, "not_checked", f"{ref}: {unlisted}")
            return
        version = pending_version({v["VersionId"]: v.get("VersionStages", []) for v in versions})
        if version is None:
            self.add(name, "ok", f"{ref}: no version is AWSPENDING without AWSCURRENT (no rotation under way)")
            return
        created = next(v.get("CreatedDate") for v in versions if v["VersionId"] == version)
        if not isinstance(created, datetime):
            self.add(name, "not_checked", f"{ref}: version {version} is AWSPENDING; ListSecretVersionIds gave no date")
            return
        hours, why = rotation_window(meta.get("RotationRules", {}))
        age = self.as_of - created
        window = f"the rotation window ({hours} h, {why})"
        if age <= timedelta(hours=hours):
            self.add(name, "ok", f"{ref}: version {version} is AWSPENDING for {_span(age)}, within {window}")
            return
        where = by_rotation_role(self.m) + (", where the database is reachable" if variable == "DATABASE_URL" else "")
        resume = secrets_command(
            f"rotate {ref.secret_id} --local", ref.region or self.region, note=f"resumes version {version}; {where}"
        )
        self.add(
            name,
            "fail",
            f"{ref}: version {version} has been AWSPENDING without AWSCURRENT for {_span(age)}, longer than "
            f"{window}: a rotation stopped before finishSecret, and Secrets Manager starts no other until it ends",
            resume,
        )


def _span(age: timedelta) -> str:
    """An age as an operator reads it: 2 days 3 h, 5 h 12 min, 40 s."""
    seconds = max(0, int(age.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} day{'s' if days > 1 else ''}" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    return f"{minutes} min" if minutes else f"{seconds} s"


def _own_fix(error: ResolutionError) -> str:
    # The generic fix of an unknown AWS error sends the operator to the doctor; here, it is the doctor.
    return "" if error.fix.startswith("ecomind doctor") else error.fix


def doctor(
    environment: EnvironmentOpt = None,
    as_json: JsonOpt = False,
    env_file: EnvFileOpt = Path(".env"),
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the database.")] = 3.0,
    as_of: Annotated[
        datetime | None,
        typer.Option("--as-of", help="Judge rotation schedules and pending versions as of this date (default: now)."),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Check only this secret variable (repeatable): what a role reading less needs."),
    ] = None,
) -> None:
    """Diagnose the configuration the way an operator would, each failure with its fix.

    First the checks the API runs at start (the same code: every value against the
    environment's policy), then: AWS credentials and region; each secret readable (a
    denial prints the exact least-privilege policy; a missing secret is looked for in
    the other regions and among similar names); the database (DNS, TCP, login, SSL);
    rotation (on, within schedule) and no rotation left unfinished (a version AWSPENDING
    without AWSCURRENT for longer than the secret's rotation window). A check that could
    not run says "not checked".
    Exit 0 when all pass, 1 when one failed, 8 when none failed but some were not checked.

    Example: ENVIRONMENT=production AWS_REGION=us-east-1 ecomind doctor
    """
    secrets = SECRET_VARIABLES
    if only:
        unknown = sorted(set(only) - set(SECRET_VARIABLES))
        if unknown:
            fail(f"--only: not a secret variable: {', '.join(unknown)}", ExitCode.USAGE)
        secrets = tuple(v for v in SECRET_VARIABLES if v in only)
    from app.settings.loading import inspect_settings  # pydantic, boto3: only when the doctor runs

    try:
        insp = inspect_settings(environment=value_of(environment), env_file=env_file, secrets=secrets)
    except SettingsError as exc:
        checks = [Check(f"configuration: {p.variable}", "fail", p.message, p.fix) for p in exc.problems]
    else:
        when = (as_of.replace(tzinfo=as_of.tzinfo or UTC)) if as_of else datetime.now(UTC)
        try:
            checks = Doctor(insp, timeout=timeout, as_of=when, secrets=secrets).run()
        finally:
            insp.store.close()
    failed = sum(c.status == "fail" for c in checks)
    unchecked = sum(c.status == "not_checked" for c in checks)
    code = ExitCode.FAILED if failed else ExitCode.NOT_CHECKED if unchecked else ExitCode.OK
    if as_json:
        print_json({"ok": code == ExitCode.OK, "exit_code": int(code), "checks": [c.as_dict() for c in checks]})
    else:
        marks = {"ok": (" ok ", "green"), "fail": ("FAIL", "red"), "warn": ("warn", "yellow")}
        for c in checks:
            mark, style = marks.get(c.status, ("not checked", "magenta"))
            # Names, references and hosts print verbatim; driver text in details was scrubbed when read.
            data(f"{mark} {c.name}: {c.detail}", style=style)
            if c.fix and c.status in ("fail", "warn"):
                data("      fix: " + c.fix.replace("\n", "\n      "))
        if failed:
            say(f"doctor: {failed} problem(s) found", err=True)
        elif unchecked:
            say(f"doctor: no problem found, but {unchecked} check(s) could not run", err=True)
        else:
            say("doctor: all checks passed")
    raise typer.Exit(int(code))
