"""``ecomind secrets get``, ``set`` and ``restore``: one value read, one written, a deletion cancelled.

``get`` prints the one value asked for; ``set`` reads a new value from stdin (never from an
argument, which ``ps`` and shell history would keep) and refuses what the API would refuse
at start, or what would break a database secret.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from app.cli.fixes import by_operator, by_rotation_role, secrets_command
from app.cli.options import JsonOpt, RegionOpt
from app.cli.output import ExitCode, Verbatim, data, fail, print_json
from app.cli.secrets.calls import SecretName, aws_errors, describe_or_none, existing, region_of, rerun, secrets_client
from app.cli.secrets.kinds import deletion_notice, secret_of
from app.cli.shell import shell
from app.secrets.endpoints import on_this_machine
from app.secrets.environment import RDS_OPTIONAL_KEYS, SecretSpec
from app.secrets.errors import SecretNotFound
from app.secrets.regions import region_option

__all__ = ["get", "restore", "set_"]


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

    replicas = [] if region else shell().replica_regions
    with SecretStore(
        region=region or shell().region, endpoint_url=secretsmanager_endpoint(), replica_regions=replicas
    ) as store:
        try:
            resolved = store.get(reference, stage)
        except SecretNotFound:
            if stage and isinstance(reference, AwsRef):
                meta = describe_or_none(store.aws.client(reference.region or region), reference.secret_id)
                if meta is not None:
                    staged = {s for stages in (meta.get("VersionIdsToStages") or {}).values() for s in stages}
                    if stage not in staged:
                        hint = " (no rotation is in progress)" if stage == "AWSPENDING" else ""
                        fail(
                            f"no version of {reference.secret_id} is staged {stage}{hint}",
                            ExitCode.NOT_FOUND,
                            fix=secrets_command(
                                f"history {reference.secret_id}",
                                reference.region or region or shell().region,
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
            fix="printf '%s' \"$VALUE\" | " + rerun(region or shell().region),
        )
    from app.secrets import redact

    redact.register_input(text)
    client = secrets_client(region)
    emulator = on_this_machine(client.meta.endpoint_url)
    with aws_errors(name, client):
        meta = existing(client, name, writes=True)
        if key:
            current = json.loads(client.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")["SecretString"])
            if not isinstance(current, dict):
                fail(f"{name} is not a JSON object: set it without a key", ExitCode.CONFIG)
            text = json.dumps({**current, key: _as_before(key, current.get(key), text)})
        _refuse_what_the_app_would(meta, text, region_of(client), emulator)
        # A value the app would take may still break a database secret: said after what the app says.
        _refuse_what_breaks_a_database_secret(client, meta, key, region_of(client), emulator)
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

    found = secret_of(meta)
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

    found = secret_of(meta)
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


def restore(
    name: SecretName,
    region: RegionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Cancel a secret's scheduled deletion (Secrets Manager keeps it 7 to 30 days).

    Example: ecomind secrets restore ecomind/prod/jwt
    """
    client = secrets_client(region)
    meta = existing(client, name, writes=True)
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


def _as_before(key: str, previous: Any, text: str) -> Any:
    """A key's new value as JSON types it: a number where it was one, and ``port`` (the RDS
    shape's one number) always, so a repaired port is stored as RDS writes it."""
    numeric = key == "port" or (isinstance(previous, int) and not isinstance(previous, bool))
    return int(text) if numeric and text.strip().isdigit() else text
