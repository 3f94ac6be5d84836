"""The calls every ``ecomind secrets`` command shares: the client, its errors, the secret asked for.

A client of the region asked (``--region``, else AWS_REGION); boto3's errors said as the secret
layer's typed errors with a fix that runs here (:func:`aws_errors`); the secret's metadata, or
the end of the command with the region that holds it, or the command that creates it. The
doctor imports what it shares from here and from :mod:`app.cli.secrets.kinds`, never from a
command's module.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Annotated, Any, NoReturn

import typer

from app.cli.fixes import DB_HOST_PLACEHOLDER, secrets_command, who_may
from app.cli.output import ExitCode, fail
from app.cli.secrets.kinds import model_of, model_secret
from app.cli.shell import shell
from app.secrets.environment import model
from app.secrets.errors import (
    BadCredentials,
    EmulatorFailed,
    InvalidRegion,
    NoCredentials,
    SecretAccessDenied,
    SecretNotFound,
    SecretsManagerUnreachable,
)
from app.secrets.regions import REGION_PLACEHOLDER, region_option

__all__ = [
    "SecretName",
    "aws_errors",
    "describe_or_none",
    "existing",
    "missing",
    "refuse_a_replica",
    "region_of",
    "rerun",
    "rerun_in",
    "secrets_client",
]


def _a_name(value: str) -> str:
    if not value.strip():
        raise typer.BadParameter("a secret name or ARN, e.g. ecomind/prod/database; not an empty string")
    return value


SecretName = Annotated[str, typer.Argument(help="Secret name or ARN, e.g. ecomind/prod/database.", callback=_a_name)]


def secrets_client(region: str | None) -> Any:
    import botocore.exceptions

    from app.secrets.clients import secretsmanager_client

    try:
        return secretsmanager_client(region)
    except botocore.exceptions.NoRegionError:
        fail("no AWS region to find the secrets in", ExitCode.CONFIG, fix=rerun(None))
    except botocore.exceptions.BotoCoreError as exc:  # the AWS config, read to make the client
        from app.secrets.aws_errors import translate_error

        error = translate_error(exc, "Secrets Manager", "")
        if isinstance(error, InvalidRegion) and region is not None:
            # The option: this very command, in a region (the docs' $REGION).
            fail(f"--region {region!r} is not a region name", ExitCode.CONFIG, fix=rerun_in(REGION_PLACEHOLDER))
        raise error from None


@contextmanager
def aws_errors(what: str, client: Any, *, names_a_secret: bool = True) -> Iterator[None]:
    """boto3 errors become the secret layer's typed errors (the CLI maps them to exit codes).

    ``what`` is the secret the calls name (unless ``names_a_secret`` is false: a listing)."""
    import botocore.exceptions

    from app.secrets.aws import emulator_answer
    from app.secrets.aws_errors import translate_error

    try:
        yield
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        error = translate_error(exc, what, str(client.meta.endpoint_url))
        if isinstance(error, EmulatorFailed):
            # An emulator answers 500 where AWS answers "no such secret" or has no such region.
            error = emulator_answer(error, client, what if names_a_secret else None)
        if isinstance(error, InvalidRegion) and "--region" in sys.argv:
            error = InvalidRegion(error.message, reference=error.reference, fix=rerun_in(REGION_PLACEHOLDER))
        operation = getattr(exc, "operation_name", "")
        if type(error) is SecretAccessDenied and operation not in ("GetSecretValue", "BatchGetSecretValue"):
            # This very command, by whoever may run it (never a grant that widens a task role).
            who = who_may(operation, model_of(what if names_a_secret else None))
            error = SecretAccessDenied(
                error.message, reference=error.reference, fix=f"{rerun_in(region_of(client))}   # {who}"
            )
        replicas = shell().replica_regions
        regional = isinstance(error, SecretsManagerUnreachable) and not isinstance(error, EmulatorFailed)
        if regional and replicas and "--region" not in sys.argv:
            # The region did not answer and the secret has replicas: the same command, asked
            # there (the arguments of these commands hold names, never a value).
            again = shlex.join(["ecomind", *sys.argv[1:], "--region", replicas[0]])
            error = SecretsManagerUnreachable(
                error.message, reference=error.reference, fix=f"{again}   # a replica region (SECRETS_REPLICA_REGIONS)"
            )
        raise error from None


def rerun(region: str | None, *extra: str, placeholder: str = "", drop: str = "") -> str:
    """This very command again, with ``extra`` options, in the region it ran in (the arguments
    of these commands hold names, never a value): a shell that passed AWS_REGION inline to
    it does not pass it to the next command. ``placeholder`` ends it, unquoted; ``drop`` is
    an option (and its value) left out."""
    args = sys.argv[1:]
    if drop in args:
        at = args.index(drop)
        args = args[:at] + args[at + 2 :]
    command = " ".join([shlex.join(["ecomind", *args, *extra]), *([placeholder] if placeholder else [])])
    if "--region" in sys.argv:
        return command
    return f"{command} {region_option(region or shell().region)}"


def rerun_in(region: str | None) -> str:
    """This very command again in ``region`` (the docs' $REGION when None), whatever region it
    ran in; ``secrets set`` with its value on stdin again."""
    args, kept = sys.argv[1:], []
    while args:
        arg = args.pop(0)
        if arg == "--region":
            args = args[1:]
        elif not arg.startswith("--region="):
            kept.append(arg)
    command = f"{shlex.join(['ecomind', *kept])} {region_option(region)}"
    return ("printf '%s' \"$VALUE\" | " if kept[:2] == ["secrets", "set"] else "") + command


def region_of(client: Any) -> str | None:
    return str(client.meta.region_name) if client.meta.region_name else None


def describe_or_none(client: Any, name: str) -> dict[str, Any] | None:
    try:
        with aws_errors(name, client):
            return dict(client.describe_secret(SecretId=name))
    except SecretNotFound:
        return None


def existing(client: Any, name: str, *, writes: bool = False) -> dict[str, Any]:
    """The secret's metadata; a missing secret ends the command (exit 4) with what to do.

    ``writes``: the command writes (set, restore, rotate), which Secrets Manager takes in the
    secret's primary region only: a replica, or a region where the role may not even describe
    the secret while its primary region answers, ends it (exit 3) with the command there."""
    try:
        meta = describe_or_none(client, name)
    except SecretAccessDenied as denied:
        if not writes or isinstance(denied, NoCredentials | BadCredentials):
            raise
        primary = _primary_elsewhere(client, name)
        if primary is None:
            raise
        fail(
            f"{denied.message} in {region_of(client)}, where Secrets Manager takes no write of it: "
            f"its primary region is {primary}",
            ExitCode.CONFIG,
            fix=f"{rerun_in(primary)}   # the secret's primary region: writes go there, replicas follow",
        )
    if meta is None:
        missing(client, name)
    if writes:
        refuse_a_replica(client, meta)
    return meta


def refuse_a_replica(client: Any, meta: dict[str, Any]) -> None:
    """End a write asked in a region that holds a replica (DescribeSecret names its primary)."""
    primary, region = meta.get("PrimaryRegion"), region_of(client)
    if primary and primary != region:
        fail(
            f"{meta['Name']} in {region} is a replica of the secret in {primary}: Secrets Manager takes "
            "writes in the primary region only",
            ExitCode.CONFIG,
            fix=f"{rerun_in(primary)}   # the secret's primary region: writes go there, replicas follow",
        )


def _other_regions(client: Any) -> dict[str, Any]:
    """A client (one attempt) for each other region of Secrets Manager, at the same endpoint
    override; made one at a time: botocore's session is not made to build them in threads."""
    from app.secrets.clients import client_config, new_session
    from app.secrets.endpoints import secretsmanager_endpoint

    session = new_session()
    return {
        r: session.create_client(
            "secretsmanager", region_name=r, endpoint_url=secretsmanager_endpoint(), config=client_config(1)
        )
        for r in sorted(session.get_available_regions("secretsmanager"))
        if r != region_of(client)
    }


def _primary_elsewhere(client: Any, name: str) -> str | None:
    """The primary region of a secret this role may not describe here, if another region
    answers: a role granted the primary region only (the rotation role) asked in a replica's."""
    from app.secrets.aws import regions_holding

    clients = _other_regions(client)
    found, _ = regions_holding(name, list(clients), clients.__getitem__)
    for region in found:
        with suppress(Exception):
            primary = clients[region].describe_secret(SecretId=name).get("PrimaryRegion") or region
            if primary == region:
                return str(region)
    return None


def missing(client: Any, name: str) -> NoReturn:
    """End the command: the secret is not in the region asked (exit 4), with the region that
    holds it when another does, else the command that creates it."""
    from app.secrets.aws import regions_holding

    region = region_of(client)
    clients = _other_regions(client)
    found, _ = regions_holding(name, list(clients), clients.__getitem__)
    if found:
        there = found[0]
        with suppress(Exception):  # a replica names its primary: the region writes go to
            there = clients[there].describe_secret(SecretId=name).get("PrimaryRegion") or there
        fail(
            f"secret {name} not found in {region}, but it exists in {', '.join(found)}",
            ExitCode.NOT_FOUND,
            fix=f"{rerun_in(there)}   # the region that holds it",
        )
    # Secrets Manager keeps no trace of a secret deleted without recovery: both read the same.
    fail(
        f"secret {name} not found in {region}: it never existed there, or it was force-deleted "
        "(Secrets Manager cannot tell which)",
        ExitCode.NOT_FOUND,
        fix=_create_fix(client, name),
    )


def _create_fix(client: Any, name: str) -> str:
    """A command that creates a missing secret, with every option that needs (placeholders the
    shell refuses to run without): provision for a secret of the model, else a listing."""
    region = region_of(client)
    found = model_secret(name)
    if found is None:
        return secrets_command(
            "list", region, note="the secrets there; ecomind doctor also looks in other regions and for similar names"
        )
    m, spec = found
    options = f"--environment {m.name}"
    database = m.secret_name("database")
    if spec.key == "database" or describe_or_none(client, database) is None:
        # Provision creates every missing secret of the environment; the database's needs its endpoint.
        options += f" --db-host {DB_HOST_PLACEHOLDER}"
    shell_prefix = (shell().prefix or "").strip().rstrip("/") or model(m.name).prefix
    prefix = "" if m.prefix == shell_prefix else f"SECRETS_PREFIX={shlex.quote(m.prefix)} "
    return prefix + secrets_command(f"provision {options}", region, note=f"creates {name} with a generated value")
