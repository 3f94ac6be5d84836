"""``ecomind secrets ...``: an environment's secrets in Secrets Manager.

``provision``, ``list``, ``describe``, ``history`` never print a value; ``get`` prints
the one value asked for; ``set`` reads a new value from stdin (never from an
argument, which ``ps`` and shell history would keep); ``rotate`` runs a rotation;
``restore`` cancels a scheduled deletion. Every name comes from the model of the
environment (:mod:`app.secrets.environment`), with ``SECRETS_PREFIX`` when set.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from app.cli.fixes import (
    DB_HOST_PLACEHOLDER,
    MASTER_URL_FILE_PLACEHOLDER,
    by_operator,
    by_rotation_role,
    master_url_note,
    secrets_command,
    who_may,
)
from app.cli.options import DeployedOpt, JsonOpt, RegionOpt, value_of
from app.cli.output import ExitCode, Verbatim, data, fail, json_mode, print_json, say, table
from app.secrets.endpoints import on_this_machine
from app.secrets.environment import (
    DATABASE_DEFAULTS,
    DEPLOYED,
    PROJECT,
    RDS_OPTIONAL_KEYS,
    EnvironmentModel,
    SecretSpec,
    model,
)
from app.secrets.errors import (
    BadCredentials,
    EmulatorFailed,
    InvalidRegion,
    NoCredentials,
    SecretAccessDenied,
    SecretDeleted,
    SecretNotFound,
    SecretsManagerUnreachable,
)
from app.secrets.regions import REGION_PLACEHOLDER, parse_regions, region_option
from app.secrets.urls import field_problems as dburl_field_problems

__all__ = ["app", "deletion_notice", "stage_repairs"]


def _a_name(value: str) -> str:
    if not value.strip():
        raise typer.BadParameter("a secret name or ARN, e.g. ecomind/prod/database; not an empty string")
    return value


SecretName = Annotated[str, typer.Argument(help="Secret name or ARN, e.g. ecomind/prod/database.", callback=_a_name)]

app = typer.Typer(
    rich_markup_mode=None,
    help="Provision, list, describe, read, write and rotate an environment's secrets.",
    no_args_is_help=True,
)


def environment_model(environment: str | None) -> EnvironmentModel:
    """The model of the environment asked for (or ENVIRONMENT), with SECRETS_PREFIX when set."""
    name = environment or os.environ.get("ENVIRONMENT") or ""
    if not name:
        fail("name the environment: --environment staging or --environment production", ExitCode.USAGE)
    try:
        m = model(name, os.environ.get("SECRETS_PREFIX"))
    except ValueError as exc:
        fail(str(exc), ExitCode.USAGE)
    if not m.deployed:
        fail("secrets live in Secrets Manager in staging and production only; use .env in development", ExitCode.USAGE)
    return m


def secrets_client(region: str | None) -> Any:
    import botocore.exceptions

    from app.secrets.aws import secretsmanager_client

    try:
        return secretsmanager_client(region)
    except botocore.exceptions.NoRegionError:
        fail("no AWS region to find the secrets in", ExitCode.CONFIG, fix=_again(None))
    except botocore.exceptions.BotoCoreError as exc:  # the AWS config, read to make the client
        from app.secrets.aws import translate_error

        error = translate_error(exc, "Secrets Manager", "")
        if isinstance(error, InvalidRegion) and region is not None:
            # The option: this very command, in a region (the docs' $REGION).
            fail(f"--region {region!r} is not a region name", ExitCode.CONFIG, fix=_again_in(REGION_PLACEHOLDER))
        raise error from None


@contextmanager
def aws_errors(what: str, client: Any, *, names_a_secret: bool = True) -> Iterator[None]:
    """boto3 errors become the secret layer's typed errors (the CLI maps them to exit codes).

    ``what`` is the secret the calls name (unless ``names_a_secret`` is false: a listing)."""
    import botocore.exceptions

    from app.secrets.aws import emulator_answer, translate_error

    try:
        yield
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        error = translate_error(exc, what, str(client.meta.endpoint_url))
        if isinstance(error, EmulatorFailed):
            # An emulator answers 500 where AWS answers "no such secret" or has no such region.
            error = emulator_answer(error, client, what if names_a_secret else None)
        if isinstance(error, InvalidRegion) and "--region" in sys.argv:
            error = InvalidRegion(error.message, reference=error.reference, fix=_again_in(REGION_PLACEHOLDER))
        operation = getattr(exc, "operation_name", "")
        if type(error) is SecretAccessDenied and operation not in ("GetSecretValue", "BatchGetSecretValue"):
            # This very command, by whoever may run it (never a grant that widens a task role).
            who = who_may(operation, _model_of(what if names_a_secret else None))
            error = SecretAccessDenied(
                error.message, reference=error.reference, fix=f"{_again_in(_region(client))}   # {who}"
            )
        replicas, _ = parse_regions(os.environ.get("SECRETS_REPLICA_REGIONS"))
        regional = isinstance(error, SecretsManagerUnreachable) and not isinstance(error, EmulatorFailed)
        if regional and replicas and "--region" not in sys.argv:
            # The region did not answer and the secret has replicas: the same command, asked
            # there (the arguments of these commands hold names, never a value).
            again = shlex.join(["ecomind", *sys.argv[1:], "--region", replicas[0]])
            error = SecretsManagerUnreachable(
                error.message, reference=error.reference, fix=f"{again}   # a replica region (SECRETS_REPLICA_REGIONS)"
            )
        raise error from None


def _model_of(name: str | None) -> EnvironmentModel | None:
    """The environment a secret belongs to (by its name), else the one asked for (ENVIRONMENT)."""
    found = _model_secret(name) if name else None
    if found is not None:
        return found[0]
    try:
        m = model(os.environ.get("ENVIRONMENT") or "", os.environ.get("SECRETS_PREFIX"))
    except ValueError:
        return None
    return m if m.deployed else None


def _again(region: str | None, *extra: str, placeholder: str = "", drop: str = "") -> str:
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
    return f"{command} {region_option(region or os.environ.get('AWS_REGION'))}"


def _again_in(region: str | None) -> str:
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


def _region(client: Any) -> str | None:
    return str(client.meta.region_name) if client.meta.region_name else None


def _describe(client: Any, name: str) -> dict[str, Any] | None:
    try:
        with aws_errors(name, client):
            return dict(client.describe_secret(SecretId=name))
    except SecretNotFound:
        return None


def _existing(client: Any, name: str, *, writes: bool = False) -> dict[str, Any]:
    """The secret's metadata; a missing secret ends the command (exit 4) with what to do.

    ``writes``: the command writes (set, restore, rotate), which Secrets Manager takes in the
    secret's primary region only: a replica, or a region where the role may not even describe
    the secret while its primary region answers, ends it (exit 3) with the command there."""
    try:
        meta = _describe(client, name)
    except SecretAccessDenied as denied:
        if not writes or isinstance(denied, NoCredentials | BadCredentials):
            raise
        primary = _primary_elsewhere(client, name)
        if primary is None:
            raise
        fail(
            f"{denied.message} in {_region(client)}, where Secrets Manager takes no write of it: "
            f"its primary region is {primary}",
            ExitCode.CONFIG,
            fix=f"{_again_in(primary)}   # the secret's primary region: writes go there, replicas follow",
        )
    if meta is None:
        _missing(client, name)
    if writes:
        _refuse_a_replica(client, meta)
    return meta


def _refuse_a_replica(client: Any, meta: dict[str, Any]) -> None:
    """End a write asked in a region that holds a replica (DescribeSecret names its primary)."""
    primary, region = meta.get("PrimaryRegion"), _region(client)
    if primary and primary != region:
        fail(
            f"{meta['Name']} in {region} is a replica of the secret in {primary}: Secrets Manager takes "
            "writes in the primary region only",
            ExitCode.CONFIG,
            fix=f"{_again_in(primary)}   # the secret's primary region: writes go there, replicas follow",
        )


def _other_regions(client: Any) -> dict[str, Any]:
    """A client (one attempt) for each other region of Secrets Manager, at the same endpoint
    override; made one at a time: botocore's session is not made to build them in threads."""
    from app.secrets.aws import client_config, new_session
    from app.secrets.endpoints import secretsmanager_endpoint

    session = new_session()
    return {
        r: session.create_client(
            "secretsmanager", region_name=r, endpoint_url=secretsmanager_endpoint(), config=client_config(1)
        )
        for r in sorted(session.get_available_regions("secretsmanager"))
        if r != _region(client)
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


def _missing(client: Any, name: str) -> NoReturn:
    """End the command: the secret is not in the region asked (exit 4), with the region that
    holds it when another does, else the command that creates it."""
    from app.secrets.aws import regions_holding

    region = _region(client)
    clients = _other_regions(client)
    found, _ = regions_holding(name, list(clients), clients.__getitem__)
    if found:
        there = found[0]
        with suppress(Exception):  # a replica names its primary: the region writes go to
            there = clients[there].describe_secret(SecretId=name).get("PrimaryRegion") or there
        fail(
            f"secret {name} not found in {region}, but it exists in {', '.join(found)}",
            ExitCode.NOT_FOUND,
            fix=f"{_again_in(there)}   # the region that holds it",
        )
    # Secrets Manager keeps no trace of a secret deleted without recovery: both read the same.
    fail(
        f"secret {name} not found in {region}: it never existed there, or it was force-deleted "
        "(Secrets Manager cannot tell which)",
        ExitCode.NOT_FOUND,
        fix=_create_fix(client, name),
    )


def _model_secret(name: str) -> tuple[EnvironmentModel, SecretSpec] | None:
    """The environment model and secret a name is, under SECRETS_PREFIX or a default prefix."""
    prefixes = [os.environ.get("SECRETS_PREFIX"), None]
    for env in DEPLOYED:
        for prefix in prefixes:
            try:
                m = model(env, prefix)
            except ValueError:  # a SECRETS_PREFIX that is not one: the default prefix still counts
                continue
            spec = next((s for s in m.secrets if m.secret_name(s.key) == name), None)
            if spec is not None:
                return m, spec
    return None


def _create_fix(client: Any, name: str) -> str:
    """A command that creates a missing secret, with every option that needs (placeholders the
    shell refuses to run without): provision for a secret of the model, else a listing."""
    region = _region(client)
    found = _model_secret(name)
    if found is None:
        return secrets_command(
            "list", region, note="the secrets there; ecomind doctor also looks in other regions and for similar names"
        )
    m, spec = found
    options = f"--environment {m.name}"
    database = m.secret_name("database")
    if spec.key == "database" or _describe(client, database) is None:
        # Provision creates every missing secret of the environment; the database's needs its endpoint.
        options += f" --db-host {DB_HOST_PLACEHOLDER}"
    shell_prefix = (os.environ.get("SECRETS_PREFIX") or "").strip().rstrip("/") or model(m.name).prefix
    prefix = "" if m.prefix == shell_prefix else f"SECRETS_PREFIX={shlex.quote(m.prefix)} "
    return prefix + secrets_command(f"provision {options}", region, note=f"creates {name} with a generated value")


def deletion_notice(meta: dict[str, Any]) -> str | None:
    """'scheduled for deletion on DATE' when the secret is, else None."""
    deleted = meta.get("DeletedDate")
    if not deleted:
        return None
    when = deleted.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if isinstance(deleted, datetime) else str(deleted)
    return f"scheduled for deletion on {when}"


def _environment_of(meta: dict[str, Any]) -> str | None:
    """The environment a secret belongs to: its tag, or the default prefix its name starts with."""
    tagged = next((t["Value"] for t in meta.get("Tags", []) if t["Key"] == "environment"), None)
    if tagged in DEPLOYED:
        return str(tagged)
    for env in DEPLOYED:
        if str(meta.get("Name", "")).startswith(model(env).prefix + "/"):
            return env
    return None


def _secret_of(meta: dict[str, Any]) -> tuple[EnvironmentModel, SecretSpec] | None:
    """Which environment's which secret this is: by its own tags (provision writes environment
    and kind), whatever its name or the shell's SECRETS_PREFIX; untagged, by its name."""
    tags = {t["Key"]: t["Value"] for t in meta.get("Tags", [])}
    name = str(meta.get("Name", ""))
    env = tags.get("environment")
    if env not in DEPLOYED:
        return _model_secret(name)
    m = model(env)  # what a value must be depends on the environment, not on the prefix
    kind = tags.get("kind")
    if kind is None:
        # Tagged with its environment only (before kinds were, or by hand): the last part of its name.
        kind = name.rsplit("/", 1)[-1]
    spec = next((s for s in m.secrets if s.key == kind), None)
    return (m, spec) if spec is not None else None


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


def _stages(meta: dict[str, Any]) -> dict[str, list[str]]:
    mapping = meta.get("VersionIdsToStages") or {}
    return {version: sorted(stages) for version, stages in mapping.items() if stages}


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


# -- provision -------------------------------------------------------------------------


@dataclass
class _Plan:
    dry_run: bool
    client: Any
    secrets: list[dict[str, Any]] = field(default_factory=list)
    update: bool = True
    differences: int = 0

    def change(self, entry: dict[str, Any], what: str, action: Any) -> None:
        """A change to an existing secret: made with --update only, listed otherwise."""
        if self.update:
            self.call(entry, what, action)
            return
        self.differences += 1
        entry.setdefault("differs", []).append(Verbatim(what))
        if not json_mode():
            data(f"  differs (--update changes it): {what}")

    @property
    def calls(self) -> int:
        return sum(len(s["changes"]) for s in self.secrets)

    def secret(self, name: str, state: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": Verbatim(name), "state": state, "changes": []}
        self.secrets.append(entry)
        if not json_mode():
            data(f"{name}: {state}")
        return entry

    def call(self, entry: dict[str, Any], what: str, action: Any) -> None:
        if not self.dry_run:
            with aws_errors(entry["name"], self.client):
                action()
        entry["changes"].append(Verbatim(what))
        if not json_mode():
            data(f"  {'would call' if self.dry_run else 'done:'} {what}")


def _account(region: str | None) -> str:
    import botocore.exceptions

    try:
        from app.secrets.aws import new_session

        return str(new_session().create_client("sts", region_name=region).get_caller_identity()["Account"])
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        from app.secrets.aws import translate_error

        raise translate_error(exc, "sts:GetCallerIdentity", "STS") from None


@app.command("provision")
def provision(
    environment: DeployedOpt = None,
    db_host: Annotated[
        str | None, typer.Option("--db-host", help="Database endpoint; needed to create the database secret.")
    ] = None,
    region: RegionOpt = None,
    kms_key_id: Annotated[str | None, typer.Option("--kms-key-id", help="Customer KMS key for both secrets.")] = None,
    db_name: Annotated[
        str | None, typer.Option("--db-name", help=f"Default when creating: {DATABASE_DEFAULTS['dbname']}.")
    ] = None,
    db_user: Annotated[
        str | None, typer.Option("--db-user", help=f"Default when creating: {DATABASE_DEFAULTS['username']}.")
    ] = None,
    db_port: Annotated[
        int | None,
        typer.Option("--db-port", min=1, max=65535, help=f"Default when creating: {DATABASE_DEFAULTS['port']}."),
    ] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Value of the owner tag.")] = None,
    enable_rotation: Annotated[
        bool, typer.Option("--enable-rotation", help="Turn rotation on, each secret with its own function.")
    ] = False,
    rotation_driver: Annotated[
        str,
        typer.Option(
            "--rotation-driver",
            help="lambda: the model's functions (docs/deployment.md, section 3); local: a schedule with no "
            "function, for emulators and test stacks, rotated by `ecomind secrets rotate NAME --local`.",
        ),
    ] = "lambda",
    rotation_days: Annotated[
        int | None,
        typer.Option(
            "--rotation-days", min=1, max=1000, help="Default: the environment's period (30 prod, 90 staging)."
        ),
    ] = None,
    replica_regions: Annotated[
        list[str] | None,
        typer.Option(
            "--replica-region",
            help="Replicate both secrets to this region too (repeatable); read there when the primary fails.",
        ),
    ] = None,
    update: Annotated[
        bool, typer.Option("--update", help="Change an existing secret where it differs from the options given.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the calls, make none.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create or update {prefix}/database and {prefix}/jwt; a second run changes nothing.

    Creates each missing secret with a value generated by Secrets Manager (the
    database secret in the RDS rotation shape), tagged with the environment, its kind
    (database, jwt) and owner. For an existing secret, the options given (--db-host, --db-user,
    --db-name, --db-port, --owner, --kms-key-id) are compared with it and only what
    differs is changed, with --update (without it, the differences are listed and the
    command exits 1: a copied example must not repoint a live secret); the password is
    kept. --replica-region replicates both secrets. With --enable-rotation each secret gets
    its own rotation function, named by the model. No value is ever printed.

    Example: ecomind secrets provision -e staging --db-host db.internal --enable-rotation
    """
    m = environment_model(value_of(environment))
    if rotation_driver not in ("lambda", "local"):
        fail(
            "--rotation-driver is lambda or local",
            ExitCode.USAGE,
            fix=_again(region, "--rotation-driver", "local"),
        )
    client = secrets_client(region)
    days = rotation_days or m.rotation_days
    plan = _Plan(dry_run, client)
    account = _account(region or client.meta.region_name) if enable_rotation and rotation_driver == "lambda" else ""
    wanted_fields = {"host": db_host, "port": db_port, "dbname": db_name, "username": db_user}
    if db_host is not None and (dburl_field_problems({"host": db_host}) or db_host.upper().startswith("YOUR")):
        fail(f"--db-host {db_host!r} is not a host name", ExitCode.USAGE, fix="--db-host db.internal.example.com")
    replicas, not_regions = parse_regions(",".join(replica_regions or []))
    if not_regions:
        fail(f"--replica-region: {', '.join(not_regions)} is not an AWS region", ExitCode.USAGE)
    plan.update = update

    for spec in m.secrets:
        name = m.secret_name(spec.key)
        meta = _describe(client, name)
        if meta is not None:
            _refuse_a_replica(client, meta)
        if meta is not None and deletion_notice(meta):
            entry = plan.secret(name, deletion_notice(meta) or "")
            entry["fix"] = Verbatim(secrets_command(f"restore {name}", _region(client)))
            if not as_json:
                data(f"  restore it first: {entry['fix']}")
            continue
        if meta is None:
            entry = plan.secret(name, "missing")
            _create(plan, entry, client, m, spec, wanted_fields, kms_key_id, owner, replicas)
        else:
            entry = plan.secret(name, "exists")
            _update(plan, entry, client, m, spec, meta, wanted_fields, kms_key_id, owner)
            _replicate(plan, entry, client, meta, replicas, kms_key_id)
        if enable_rotation:
            function = m.function_arn(client.meta.region_name, account, spec.key) if account else ""
            current = meta or {}
            same = (
                current.get("RotationEnabled")
                # The local driver leaves a secret's function alone: it drives rotations by hand.
                and ((current.get("RotationLambdaARN") or "") == function or rotation_driver == "local")
                and current.get("RotationRules", {}).get("AutomaticallyAfterDays") == days
            )
            if not same:
                kwargs: dict[str, Any] = {
                    "SecretId": name,
                    "RotationRules": {"AutomaticallyAfterDays": days},
                    "RotateImmediately": False,
                }
                if function:
                    kwargs["RotationLambdaARN"] = function
                shown = f"RotateSecret(every {days} days, " + (
                    f"function {function})" if function else "no function: rotate with ecomind secrets rotate --local)"
                )
                plan.call(entry, shown, lambda kwargs=kwargs: _rotate_secret(client, m, kwargs))
    if as_json:
        print_json({"environment": m.name, "prefix": Verbatim(m.prefix), "dry_run": dry_run, "secrets": plan.secrets})
    if plan.differences:
        again = _again(_region(client), "--update")
        fail(f"{plan.differences} difference(s) with what exists were not applied", ExitCode.FAILED, fix=again)
    if as_json:
        return
    if plan.calls == 0:
        say("nothing to do: every secret exists as asked")
    elif dry_run:
        say(f"dry run: {plan.calls} call(s) would be made")


def _rotate_secret(client: Any, m: EnvironmentModel, kwargs: dict[str, Any]) -> None:
    import botocore.exceptions

    name = kwargs["SecretId"]
    before = _current_version(client, name)
    try:
        client.rotate_secret(**kwargs)
        after = _current_version(client, name)
        if before and after and after != before and not kwargs.get("RotateImmediately", True):
            # Asked not to rotate now, the endpoint did (moto does): the value the operator
            # set is stored again as AWSCURRENT. (Moving the stage back is not enough for
            # moto, which keeps serving the value it rotated to.)
            kept = client.get_secret_value(SecretId=name, VersionId=before)
            value = {k: kept[k] for k in ("SecretString", "SecretBinary") if k in kept}
            client.put_secret_value(SecretId=name, **value)
            # And AWSPREVIOUS on the version the operator set, not on the one the endpoint made:
            # what was signed or connected with the kept value (a JWT's key id is its version
            # id) keeps working, as after a rotation.
            previous = next(
                (
                    v
                    for v, staged in _stages(_describe_now(client, name)).items()
                    if "AWSPREVIOUS" in staged and v != before
                ),
                None,
            )
            move = {"RemoveFromVersionId": previous} if previous else {}
            client.update_secret_version_stage(
                SecretId=name, VersionStage="AWSPREVIOUS", MoveToVersionId=before, **move
            )
            data(
                f"  note: the endpoint rotated {name} although RotateImmediately was false; "
                "the value it had is AWSCURRENT again",
                err=True,
            )
    except botocore.exceptions.ClientError as exc:
        function = kwargs.get("RotationLambdaARN")
        if function and exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            fail(
                f"the rotation function {function} does not exist",
                ExitCode.NOT_FOUND,
                fix="create it: docs/deployment.md, section 3 (on an emulator, which runs no functions: "
                + secrets_command(
                    f"provision --environment {m.name} --enable-rotation --rotation-driver local", _region(client)
                )
                + ")",
            )
        raise


def _as_before(key: str, previous: Any, text: str) -> Any:
    """A key's new value as JSON types it: a number where it was one, and ``port`` (the RDS
    shape's one number) always, so a repaired port is stored as RDS writes it."""
    numeric = key == "port" or (isinstance(previous, int) and not isinstance(previous, bool))
    return int(text) if numeric and text.strip().isdigit() else text


def _describe_now(client: Any, name: str) -> dict[str, Any]:
    return dict(client.describe_secret(SecretId=name))


def _current_version(client: Any, name: str) -> str | None:
    return next((v for v, staged in _stages(_describe_now(client, name)).items() if "AWSCURRENT" in staged), None)


def _replica_entries(replicas: list[str], kms_key_id: str | None) -> list[dict[str, str]]:
    # A multi-Region key (mrk-) has a replica of the same id in each region; another key
    # cannot leave its region, so the replica region's default key encrypts the replica.
    entries = []
    for region in replicas:
        entry = {"Region": region}
        if kms_key_id and "mrk-" in kms_key_id and kms_key_id.startswith("arn:"):
            parts = kms_key_id.split(":")
            parts[3] = region
            entry["KmsKeyId"] = ":".join(parts)
        entries.append(entry)
    return entries


def _replicate(
    plan: _Plan, entry: dict[str, Any], client: Any, meta: dict[str, Any], replicas: list[str], kms_key_id: str | None
) -> None:
    have = {r.get("Region") for r in meta.get("ReplicationStatus", [])}
    missing = [r for r in replicas if r not in have and r != client.meta.region_name]
    if missing:
        name = meta["Name"]
        add = _replica_entries(missing, kms_key_id)
        plan.call(
            entry,
            f"ReplicateSecretToRegions({', '.join(missing)})",
            lambda: client.replicate_secret_to_regions(SecretId=name, AddReplicaRegions=add),
        )


def _create(
    plan: _Plan,
    entry: dict[str, Any],
    client: Any,
    m: EnvironmentModel,
    spec: SecretSpec,
    wanted: dict[str, Any],
    kms_key_id: str | None,
    owner: str | None,
    replicas: list[str],
) -> None:
    name = m.secret_name(spec.key)
    if spec.shape == "rds" and not wanted["host"]:
        fail(
            f"{name} does not exist yet: creating it needs the database endpoint",
            ExitCode.USAGE,
            fix=_again(_region(client), "--db-host", placeholder=DB_HOST_PLACEHOLDER),
        )
    tags = [{"Key": k, "Value": v} for k, v in m.tags(spec.key, owner).items()]
    kwargs: dict[str, Any] = {"Name": name, "Description": m.description(spec.key), "Tags": tags}
    if kms_key_id:
        kwargs["KmsKeyId"] = kms_key_id
    if replicas:
        kwargs["AddReplicaRegions"] = _replica_entries(replicas, kms_key_id)

    def value() -> str:
        generated = str(client.get_random_password(**spec.generation.get_random_password_args())["RandomPassword"])
        if spec.shape != "rds":
            return generated
        fields = {**DATABASE_DEFAULTS, **{k: v for k, v in wanted.items() if v is not None}}
        return json.dumps({**fields, "password": generated})

    shown = f"CreateSecret(Name={name}{', KmsKeyId=' + kms_key_id if kms_key_id else ''}, tags environment/kind/owner"
    shown += f", replicas in {', '.join(replicas)})" if replicas else ")"
    plan.call(entry, shown, lambda: client.create_secret(SecretString=value(), **kwargs))


def _update(
    plan: _Plan,
    entry: dict[str, Any],
    client: Any,
    m: EnvironmentModel,
    spec: SecretSpec,
    meta: dict[str, Any],
    wanted: dict[str, Any],
    kms_key_id: str | None,
    owner: str | None,
) -> None:
    name = m.secret_name(spec.key)
    tags = {t["Key"]: t["Value"] for t in meta.get("Tags", [])}
    if tags.get("environment") not in (None, m.name):
        prefix_set = f"; SECRETS_PREFIX={m.prefix} is set in your shell" if os.environ.get("SECRETS_PREFIX") else ""
        fail(
            f"{name} belongs to {tags['environment']} (its environment tag), not {m.name}{prefix_set}",
            ExitCode.CONFIG,
            fix=f"unset SECRETS_PREFIX   # or set it to the prefix of {m.name}'s secrets",
        )
    want_tags = {k: v for k, v in m.tags(spec.key, owner).items() if k != "owner" or owner}
    changed_tags = {k: v for k, v in want_tags.items() if tags.get(k) != v}
    if changed_tags:
        shown = "TagResource(" + ", ".join(f"{k}={v}" for k, v in changed_tags.items()) + ")"
        # A tag added where there was none changes nothing anyone relies on; replacing one does.
        step = plan.change if any(k in tags for k in changed_tags) else plan.call
        step(
            entry,
            shown,
            lambda: client.tag_resource(SecretId=name, Tags=[{"Key": k, "Value": v} for k, v in changed_tags.items()]),
        )
    if kms_key_id and meta.get("KmsKeyId") != kms_key_id:
        plan.change(
            entry,
            f"UpdateSecret(KmsKeyId={kms_key_id})",
            lambda: client.update_secret(SecretId=name, KmsKeyId=kms_key_id),
        )
    asked = {k: v for k, v in wanted.items() if v is not None}
    if spec.shape != "rds" or not asked:
        return
    with aws_errors(name, client):
        current = json.loads(client.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")["SecretString"])
    differ = {k: v for k, v in asked.items() if str(current.get(k)) != str(v)}
    if not differ:
        return
    new = {**current, **differ}
    shown = (
        "PutSecretValue(" + ", ".join(f"{k}: {current.get(k)} -> {v}" for k, v in differ.items()) + "; password kept)"
    )
    plan.change(entry, shown, lambda: client.put_secret_value(SecretId=name, SecretString=json.dumps(new)))
    if "username" in differ and plan.update and not json_mode():
        say(
            f"  note: the password now belongs to {differ['username']}; set it on that role, or rotate: "
            + secrets_command(
                f"rotate {name}{' --local' if on_this_machine(client.meta.endpoint_url) else ''}", _region(client)
            )
        )


# -- list, describe, history --------------------------------------------------------------


@app.command("list")
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
    env = value_of(environment) or os.environ.get("ENVIRONMENT")
    if env and env != "development":
        prefix = environment_model(env).prefix + "/"
    else:
        prefix = (os.environ.get("SECRETS_PREFIX") or PROJECT).rstrip("/") + "/"
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


@app.command("describe")
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
    meta = _existing(client, name)
    info: dict[str, Any] = {
        "name": Verbatim(meta["Name"]),
        "arn": Verbatim(meta["ARN"]),
        "state": deletion_notice(meta) or "active",
        "kms_key": Verbatim(meta.get("KmsKeyId", "aws/secretsmanager (AWS managed)")),
        "tags": {t["Key"]: Verbatim(t["Value"]) for t in meta.get("Tags", [])},
        "versions": _stages(meta),
        **_rotation(client, meta),
        "primary_region": meta.get("PrimaryRegion") or client.meta.region_name,
        "replicas": _replicas(meta),
    }
    if deletion_notice(meta):
        info["fix"] = Verbatim(secrets_command(f"restore {meta['Name']}", _region(client)))
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


@app.command("history")
def history(
    name: SecretName,
    region: RegionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every version of a secret with its stages and dates; never a value.

    Example: ecomind secrets history ecomind/prod/jwt
    """
    client = secrets_client(region)
    versions: list[dict[str, Any]] = []
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
        _missing(client, name)
    for page in pages:
        for v in page.get("Versions", []):
            versions.append(
                {
                    "version": Verbatim(v["VersionId"]),
                    "stages": sorted(v.get("VersionStages", [])),
                    "created": _iso(v.get("CreatedDate")),
                    "last_accessed": _iso(v.get("LastAccessedDate")),
                }
            )
    # Newest first; within a second (rotations are fast), the stage order of a rotation.
    order = {"AWSPENDING": 0, "AWSCURRENT": 1, "AWSPREVIOUS": 2}
    versions.sort(key=lambda v: min((order.get(s, 3) for s in v["stages"]), default=3))
    versions.sort(key=lambda v: v["created"] or "", reverse=True)
    listed = [v for page in pages for v in page.get("Versions", [])]
    with aws_errors(name, client):
        problems = stage_repairs(
            client,
            name,
            {v["VersionId"]: v.get("VersionStages", []) for v in listed},
            {v["VersionId"]: v.get("CreatedDate") for v in listed},
        )
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
    import botocore.exceptions

    from app.rotation.protocol import doubled_stages

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

    region = _region(client)
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


# -- get, set, restore -------------------------------------------------------------------


@app.command("get")
def get(
    ref: Annotated[
        str, typer.Argument(help="A reference (arn:..., aws-secretsmanager:NAME[:KEY], file:PATH) or a secret name.")
    ],
    stage: Annotated[str | None, typer.Option("--stage", help="Version stage, e.g. AWSPENDING or AWSPREVIOUS.")] = None,
    region: RegionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print one resolved value on stdout, like `aws secretsmanager get-secret-value`.

    This is the one command that prints a secret, because you asked for it: pipe it,
    do not paste it. The region comes from --region, AWS_REGION or the ARN; without
    --region, the regions of SECRETS_REPLICA_REGIONS are asked when that one does not
    answer, as the API does.

    Example: ecomind secrets get aws-secretsmanager:ecomind/staging/database:password
    """
    from app.secrets.endpoints import secretsmanager_endpoint
    from app.secrets.refs import AwsRef, is_reference, parse_reference
    from app.secrets.store import SecretStore

    reference = parse_reference(ref if is_reference(ref) else f"aws-secretsmanager:{ref}")
    if stage and not isinstance(reference, AwsRef):
        fail("--stage applies to Secrets Manager references only", ExitCode.USAGE)
    from app.secrets.regions import parse_regions

    replicas = [] if region else parse_regions(os.environ.get("SECRETS_REPLICA_REGIONS"))[0]
    with SecretStore(
        region=region or os.environ.get("AWS_REGION"), endpoint_url=secretsmanager_endpoint(), replica_regions=replicas
    ) as store:
        try:
            resolved = store.get(reference, stage)
        except SecretNotFound:
            if stage and isinstance(reference, AwsRef):
                meta = _describe(store.aws.client(reference.region or region), reference.secret_id)
                if meta is not None:
                    staged = {s for stages in (meta.get("VersionIdsToStages") or {}).values() for s in stages}
                    if stage not in staged:
                        hint = " (no rotation is in progress)" if stage == "AWSPENDING" else ""
                        fail(
                            f"no version of {reference.secret_id} is staged {stage}{hint}",
                            ExitCode.NOT_FOUND,
                            fix=secrets_command(
                                f"history {reference.secret_id}",
                                reference.region or region or os.environ.get("AWS_REGION"),
                                note="the versions and their stages",
                            ),
                        )
            raise
    text = resolved.value.get_secret_value()
    if as_json:
        sys.stdout.write(
            json.dumps({"reference": str(reference), "version": resolved.version_id, "value": text}) + "\n"
        )
    else:
        sys.stdout.write(text + "\n")


@app.command("set")
def set_(
    name: SecretName,
    key: Annotated[str | None, typer.Argument(help="A JSON key to set inside the secret (e.g. host).")] = None,
    region: RegionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Store a new version of a secret, the value read from stdin (never from an argument).

    With KEY, the secret is JSON and only that key changes. The new version becomes
    AWSCURRENT; the previous one stays readable as AWSPREVIOUS.

    Example: printf '%s' "$NEW_VALUE" | ecomind secrets set ecomind/staging/jwt
    """
    if sys.stdin.isatty():
        import getpass

        text = getpass.getpass(f"new value for {name}{':' + key if key else ''}: ")
    else:
        text = sys.stdin.read()
        text = text[:-1] if text.endswith("\n") else text
    if not text:
        fail(
            "no value on stdin: nothing stored",
            ExitCode.USAGE,
            fix="printf '%s' \"$VALUE\" | " + _again(region or os.environ.get("AWS_REGION")),
        )
    from app.secrets import redact

    redact.register_input(text)
    client = secrets_client(region)
    emulator = on_this_machine(client.meta.endpoint_url)
    with aws_errors(name, client):
        meta = _existing(client, name, writes=True)
        if key:
            current = json.loads(client.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")["SecretString"])
            if not isinstance(current, dict):
                fail(f"{name} is not a JSON object: set it without a key", ExitCode.CONFIG)
            text = json.dumps({**current, key: _as_before(key, current.get(key), text)})
        _refuse_what_the_app_would(meta, text, _region(client), emulator)
        # A value the app would take may still break a database secret: said after what the app says.
        _refuse_what_breaks_a_database_secret(client, meta, key, _region(client), emulator)
        version = client.put_secret_value(SecretId=name, SecretString=text)["VersionId"]
    if as_json:
        print_json({"name": Verbatim(name), "key": key, "version": Verbatim(version), "stage": "AWSCURRENT"})
    else:
        data(f"{name}{':' + key if key else ''}: stored as version {version} (AWSCURRENT)")


def _refuse_what_breaks_a_database_secret(
    client: Any, meta: dict[str, Any], key: str | None, region: str | None, emulator: bool
) -> None:
    """A database secret of the model (RDS shape) changes one known field at a time, and its
    password only by a rotation, which sets it in the database too: a password set here is
    not the database's (every new connection of the API would be refused), an unknown key is
    read by nothing, and a whole value would replace every field, the password with them."""
    import botocore.exceptions

    found = _secret_of(meta)
    if found is None or found[1].shape != "rds":
        return
    m, spec = found
    name = meta["Name"]
    settable = [k for k in (*spec.json_keys, *RDS_OPTIONAL_KEYS) if k != "password"]
    if key == "password":
        # Driven here on an emulator (its functions do not run) or when no function is attached.
        local = emulator or not meta.get("RotationLambdaARN")
        rotate = f"rotate {name}{' --local' if local else ''}"
        fail(
            f"not stored: the password of {name} changes only by a rotation, which sets it in the database too "
            "(a password set here would not be the database's: every new connection would be refused)",
            ExitCode.USAGE,
            fix=secrets_command(rotate, region, note=by_rotation_role(m) if local else by_operator(m)),
        )
    if key is not None and key not in settable:
        fail(
            f"not stored: {name} (a database secret, RDS shape) has no key {key}: its keys are "
            f"{', '.join(settable)}, and its password changes only by a rotation",
            ExitCode.USAGE,
            fix=_right_value_fix(meta, spec, region, emulator),
        )
    if key is None:
        try:
            current = json.loads(client.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")["SecretString"])
        except (botocore.exceptions.ClientError, ValueError, KeyError):
            return  # no value yet, or not JSON (a URL written before the RDS shape): a whole value fits
        if isinstance(current, dict) and current.get("host") and current.get("username"):
            fail(
                f"not stored: {name} holds the RDS fields ({', '.join(k for k in current if k != 'password')}, "
                "password): a whole value would replace them all, the password with them",
                ExitCode.CONFIG,
                fix=_right_value_fix(meta, spec, region, emulator),
            )


def _refuse_what_the_app_would(meta: dict[str, Any], text: str, region: str | None, emulator: bool) -> None:
    """A secret of the model: the value must pass the check its variable gets at start."""
    from app.secrets.errors import set_key_fix
    from app.secrets.policy import CHECKS

    found = _secret_of(meta)
    if found is None:
        return
    m, spec = found
    findings = [f for f in CHECKS[spec.variable](m, text).findings if f.severity == "error"]
    if not findings:
        return
    key = next((f.json_key for f in findings if f.json_key), None)
    name = meta["Name"]
    fix = set_key_fix(name, key, region) if key else _right_value_fix(meta, spec, region, emulator)
    said = "; ".join(_of_the_value(f.message) for f in findings)
    fail(f"not stored: as {spec.variable} in {m.name}: {said}", ExitCode.CONFIG, fix=fix)


# A policy finding about a value is either a sentence ("the value is not a URL") or what
# follows the variable's name ("is 8 bytes; staging needs at least 32"): the second reads
# as said of the value.
_PREDICATES = ("is ", "holds ", "has ", "names ")


def _of_the_value(message: str) -> str:
    return f"the value {message}" if message.startswith(_PREDICATES) else message


def _right_value_fix(meta: dict[str, Any], spec: SecretSpec, region: str | None, emulator: bool) -> str:
    """How to store a right value, by the kind of secret: a database secret holds the RDS
    fields (one set at a time; its password only by a rotation, which sets it in the database
    too); a signing key is a generated one, by a rotation when it has one (driven here on an
    emulator, whose functions do not run)."""
    name = meta["Name"]
    if spec.shape == "rds":
        fields = ", ".join(k for k in (*spec.json_keys, *RDS_OPTIONAL_KEYS) if k not in ("host", "password"))
        rotate = f"ecomind secrets rotate {name}{' --local' if emulator else ''} {region_option(region)}"
        return (
            f"printf '%s' \"$VALUE\" | ecomind secrets set {name} host {region_option(region)}   # VALUE: the "
            f"database's host; {fields} the same way; the password only by: {rotate}"
        )
    if meta.get("RotationEnabled") and (emulator or not meta.get("RotationLambdaARN")):
        note = "a generated value" + (
            "; AWS_ENDPOINT_URL is on this machine: an emulator runs no functions" if emulator else ""
        )
        return secrets_command(f"rotate {name} --local", region, note=note)
    if meta.get("RotationEnabled"):
        return secrets_command(f"rotate {name}", region, note="a generated value")
    generate = "python3 -c 'import secrets; print(secrets.token_urlsafe(48), end=\"\")'"
    return f"{generate} | ecomind secrets set {name} {region_option(region)}   # a generated value, never shown"


@app.command("restore")
def restore(
    name: SecretName,
    region: RegionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Cancel a secret's scheduled deletion (Secrets Manager keeps it 7 to 30 days).

    Example: ecomind secrets restore ecomind/prod/jwt
    """
    client = secrets_client(region)
    meta = _existing(client, name, writes=True)
    if not deletion_notice(meta):
        state = "not scheduled for deletion: nothing to do"
    else:
        with aws_errors(name, client):
            client.restore_secret(SecretId=name)
        state = "restored"
    if as_json:
        print_json({"name": Verbatim(meta["Name"]), "state": state})
    else:
        data(f"{meta['Name']}: {state}")


# -- rotate ------------------------------------------------------------------------------


def _master_url(path: Path | None, region: str | None) -> Callable[[], str | None]:
    """Where a database rotation reads the master user's URL, asked only if it needs it: the
    file (read now: a file that cannot be read stops the command before any step), else
    ECOMIND_MASTER_URL, else (in a terminal) a prompt that does not echo."""
    from app.rotation.postgres import MASTER_URL
    from app.secrets import redact

    given: str | None = None
    if path is not None:
        try:
            given = path.read_text().strip()
        except OSError as exc:
            option = "--master-url-file"
            again = _again(region, option, placeholder=MASTER_URL_FILE_PLACEHOLDER, drop=option)
            fail(f"{option} {path}: {exc.strerror}", ExitCode.NOT_FOUND, fix=f"{again}   # {master_url_note()}")
        redact.register_input(given)

    def read() -> str | None:
        url = given
        if path is None:
            url = os.environ.get(MASTER_URL)
            if not url and sys.stdin.isatty():
                import getpass

                url = getpass.getpass("the master user's URL, postgresql://USER:PASSWORD@HOST:PORT/postgres: ")
        if url:
            redact.register_input(url)  # a driver's error may quote it: never printed
        return url or None

    return read


@app.command("rotate")
def rotate(
    name: SecretName,
    strategy: Annotated[
        str | None, typer.Option("--strategy", help="single-user or alternating-users; checked against the secret.")
    ] = None,
    local: Annotated[
        bool, typer.Option("--local", help="Drive the four steps here instead of calling RotateSecret.")
    ] = False,
    master_url_file: Annotated[
        Path | None,
        typer.Option(
            "--master-url-file",
            help="With --local, when neither stored password of a database secret logs in: a file holding the "
            "master user's URL, postgresql://MASTER_USER:MASTER_PASSWORD@HOST:PORT/postgres. Without it: "
            "ECOMIND_MASTER_URL, else a prompt (not echoed) in a terminal.",
        ),
    ] = None,
    region: RegionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rotate a secret now: the database password or the JWT secret.

    By default this calls RotateSecret and the secret's rotation function does the
    work. With --local the steps createSecret, setSecret, testSecret and finishSecret
    run here through the same handler code (for emulators, which cannot run a
    function, and for an operator shell that reaches the database); progress is shown
    per step. A failed step exits non-zero naming it; the same command resumes.
    A database whose role no longer takes either stored password is re-passworded by its
    master user, whose URL is read (only then) from --master-url-file, ECOMIND_MASTER_URL
    or a prompt: never from the command line.

    Example: ecomind secrets rotate ecomind/staging/database --local
    """
    from app.rotation.driver import rotate_locally, rotator_for
    from app.rotation.protocol import RotationError

    if strategy not in (None, "single-user", "alternating-users"):
        fail("--strategy is single-user or alternating-users", ExitCode.USAGE)
    client = secrets_client(region)
    meta = _existing(client, name, writes=True)
    if deletion_notice(meta):
        restore = secrets_command(f"restore {name}", _region(client))
        fail(f"{name} is {deletion_notice(meta)}", ExitCode.NOT_FOUND, fix=restore)
    if not meta.get("RotationEnabled"):
        env = _environment_of(meta)
        driver = " --rotation-driver local" if local else ""
        fail(
            f"rotation is not enabled on {name}",
            ExitCode.CONFIG,
            fix=secrets_command(f"provision --environment {env} --enable-rotation{driver}", _region(client))
            if env
            else "tag the secret environment=staging or environment=production, then run "
            f"ecomind secrets provision --enable-rotation{driver} for that environment",
        )
    if not local:
        if on_this_machine(client.meta.endpoint_url):
            # An emulator's function answers without running: RotateSecret there would stage a
            # version with no value, report success and leave readers on AWSCURRENT with nothing.
            found = _model_secret(name)
            who = by_rotation_role(found[0] if found else None)
            fail(
                f"AWS_ENDPOINT_URL is on this machine: an emulator runs no rotation function, so "
                f"RotateSecret would not rotate {name}",
                ExitCode.CONFIG,
                fix=_again(_region(client), "--local") + f"   # the four steps, here; {who}",
            )
        if not meta.get("RotationLambdaARN"):
            fail(
                f"{name} has no rotation function",
                ExitCode.CONFIG,
                fix=_again(_region(client), "--local") + "   # or attach the function: docs/deployment.md, section 3",
            )
        with aws_errors(name, client):
            client.rotate_secret(SecretId=name, RotateImmediately=True)
        if as_json:
            print_json({"name": Verbatim(name), "state": "started"})
        else:
            follow = secrets_command(f"history {name}", _region(client))
            data(f"rotation of {name} started by Secrets Manager; follow it with: {follow}")
        return
    master = _master_url(master_url_file, _region(client))
    try:
        with aws_errors(name, client):
            rotator = rotator_for(client, name, strategy, master_url=master)
            version = rotate_locally(
                client, name, rotator, on_step=lambda step: None if as_json else data(f"  {step} ...", err=True)
            )
    except RotationError as exc:
        fix = _again(_region(client)) + "   # resumes"
        if "neither AWSCURRENT nor AWSPREVIOUS logs in" in str(exc):
            m = _model_secret(name)
            fix = _again(
                _region(client), "--master-url-file", placeholder=MASTER_URL_FILE_PLACEHOLDER, drop="--master-url-file"
            )
            fix += f"   # {master_url_note()}; {by_rotation_role(m[0] if m else None)}"
        fail(f"rotation failed: {exc}", ExitCode.FAILED, fix=fix)
    if as_json:
        print_json({"name": Verbatim(name), "state": "rotated", "version": Verbatim(version)})
    else:
        data(f"rotated {name}: AWSCURRENT is now version {version}")
