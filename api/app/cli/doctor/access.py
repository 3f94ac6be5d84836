"""The doctor's AWS access checks: credentials, region, and why a secret could not be read.

A denial prints the least-privilege policy of the secret (the API role's grant on it); a
missing secret is looked for in the other regions and among similar names; a secret
scheduled for deletion gets the command that restores it.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import TYPE_CHECKING, Any

from app.cli.fixes import DB_HOST_PLACEHOLDER, by_operator, secrets_command
from app.secrets.environment import API_SECRET_ACTIONS, arn_is_complete, arn_pattern, arn_region, secret_arn
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
)
from app.secrets.refs import AwsRef
from app.secrets.regions import REGION_PLACEHOLDER

if TYPE_CHECKING:
    pass
from app.cli.doctor.base import DoctorBase

__all__ = ["AccessChecks"]


def least_privilege_statement(arn: str, kms_key: str | None = None, *, complete: bool = False) -> dict[str, Any]:
    """The IAM policy that lets a role read exactly this secret (and decrypt it), as the API
    role reads it: its value, and the rotation state the doctor checks, so that once attached
    every check of the secret runs (deploy/iam/api-task-role.policy.json, the model's
    API_SECRET_ACTIONS).

    Secrets Manager appends "-" and six random characters to a secret's name in its
    ARN; unless ``arn`` is known to be complete, the statement matches them.
    """
    resource = arn if complete else arn_pattern(arn)
    statements: list[dict[str, Any]] = [{"Effect": "Allow", "Action": list(API_SECRET_ACTIONS), "Resource": resource}]
    if kms_key:
        region = arn_region(arn)
        statements.append(
            {
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": kms_key,
                "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def own_fix(error: ResolutionError) -> str:
    # The generic fix of an unknown AWS error sends the operator to the doctor; here, it is the doctor.
    return "" if error.fix.startswith("ecomind doctor") else error.fix


class AccessChecks(DoctorBase):
    """AWS credentials and region, and each secret readable."""

    def credentials(self) -> None:
        import botocore.exceptions

        from app.secrets.aws_errors import translate_error

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

        from app.secrets.aws_errors import translate_error

        try:
            botocore.utils.validate_region_name(self.region)
        except botocore.exceptions.InvalidRegionError as exc:
            return translate_error(exc, "the secrets", "AWS")
        return None

    def caller(self, method: str) -> None:
        """Credentials found: does AWS take them? IAM never denies sts:GetCallerIdentity, so
        when it fails the credentials themselves are refused (or STS did not answer)."""
        import botocore.exceptions

        from app.secrets.aws_errors import translate_error

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
        elif isinstance(error, SecretAccessDenied) and isinstance(ref, AwsRef) and self.not_read_by_caller(variable):
            self.not_for_this_role(name, ref)
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
            self.add(name, "fail", error.message, own_fix(error))

    def caller_role(self) -> str | None:
        """The environment's role the credentials are (STS: ``assumed-role/NAME/SESSION``), if one is."""
        arn = str((self.identity or {}).get("Arn", ""))
        found = re.match(r"arn:[^:]+:sts::[^:]*:assumed-role/([^/]+)/", arn)
        return self.m.role_of(found.group(1)) if found else None

    def not_read_by_caller(self, variable: str) -> bool:
        """The caller is a role of the environment that does not read this variable's secret."""
        role = self.caller_role()
        spec = next((s for s in self.m.secrets if s.variable == variable), None)
        return role is not None and spec is not None and spec.key not in self.m.reads(role)

    def not_for_this_role(self, name: str, ref: AwsRef) -> None:
        """A denial the role's job explains: the checks of what it reads, never a wider grant."""
        role = str(self.caller_role())
        reads = [spec.variable for spec in self.m.secrets if spec.key in self.m.reads(role)]
        region = ref.region or self.region or REGION_PLACEHOLDER
        only = " ".join(f"--only {v}" for v in reads)
        self.add(
            name,
            "not_checked",
            f"{ref}: not run for {self.m.role_name(role)}, which reads {', '.join(reads)} only "
            "(denied, as it should be)",
            f"AWS_REGION={region} ecomind doctor --environment {self.m.name} {only}",
        )

    def denied(self, name: str, ref: AwsRef) -> None:
        from app.cli.secrets.kinds import model_secret

        if ref.secret_id.startswith("arn:"):
            # An ARN copied from the console ends with the suffix; a partial one does not.
            complete = arn_is_complete(ref.secret_id)
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
        fix += ":\n" + statement
        secret_name = ref.secret_id.split(":secret:")[-1]
        if model_secret(secret_name) is None:
            self.add(name, "fail", f"{ref}: access denied to this role", fix)
            return
        # A secret of the environment, granted by ARN pattern (name-??????): AWS answers a read of
        # a name no secret has with AccessDenied too, so the denial may be a missing secret.
        here = ref.region or self.region
        which = secrets_command(f"describe {secret_name}", here, note="as the operator: tells which")
        self.add(
            name,
            "fail",
            f"{ref}: denied, or the secret does not exist (AWS answers AccessDenied for a missing secret "
            "under a suffix-scoped grant)",
            f"{which}\nif it exists, {fix}",
        )

    def arn_for(self, ref: AwsRef) -> tuple[str, bool]:
        region = str(ref.region or self.region)
        account = (self.identity or {}).get("Account")
        if not account:  # the credentials check could not tell: the policy still says what to grant
            return secret_arn(region, "ACCOUNT_ID", ref.secret_id), False
        return secret_arn(region, str(account), ref.secret_id), True

    def deleted(self, name: str, ref: AwsRef) -> None:
        import botocore.exceptions

        from app.cli.secrets.kinds import deletion_notice

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
