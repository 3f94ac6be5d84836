"""``ecomind secrets provision``: the plan that creates or updates an environment's secrets.

Each change is a call made (or, with ``--dry-run``, shown); a change to an existing secret
is made with ``--update`` only, listed otherwise; a second run changes nothing.

One job, a little over 400 lines: the command's fifteen options are declared here as data
(names, types, help), beside the steps of the plan (create, update, replicate, rotation).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer

from app.cli.fixes import DB_HOST_PLACEHOLDER, secrets_command
from app.cli.options import DeployedOpt, JsonOpt, RegionOpt, value_of
from app.cli.output import ExitCode, Verbatim, data, fail, json_mode, print_json, say
from app.cli.secrets.calls import aws_errors, describe_or_none, refuse_a_replica, region_of, rerun, secrets_client
from app.cli.secrets.kinds import deletion_notice, environment_model
from app.cli.shell import shell
from app.secrets.endpoints import on_this_machine
from app.secrets.environment import DATABASE_DEFAULTS, DEPLOYED, EnvironmentModel, SecretSpec, arn_in_region, model
from app.secrets.errors import SecretNotFound
from app.secrets.regions import parse_regions
from app.secrets.urls import field_problems as dburl_field_problems

__all__ = ["provision"]


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
        from app.secrets.clients import new_session

        return str(new_session().create_client("sts", region_name=region).get_caller_identity()["Account"])
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        from app.secrets.aws_errors import translate_error

        raise translate_error(exc, "sts:GetCallerIdentity", "STS") from None


# Each deployed environment's rotation period, as the model sets it: "30 prod, 90 staging".
_PERIODS = ", ".join(f"{model(env).rotation_days} {model(env).short}" for env in reversed(DEPLOYED))


# provision's options, declared once (data: the names, types and help the command shows).
DbHostOpt = Annotated[
    str | None, typer.Option("--db-host", help="Database endpoint; needed to create the database secret.")
]
KmsKeyOpt = Annotated[str | None, typer.Option("--kms-key-id", help="Customer KMS key for both secrets.")]
DbNameOpt = Annotated[
    str | None, typer.Option("--db-name", help=f"Default when creating: {DATABASE_DEFAULTS['dbname']}.")
]
DbUserOpt = Annotated[
    str | None, typer.Option("--db-user", help=f"Default when creating: {DATABASE_DEFAULTS['username']}.")
]
DbPortOpt = Annotated[
    int | None,
    typer.Option("--db-port", min=1, max=65535, help=f"Default when creating: {DATABASE_DEFAULTS['port']}."),
]
OwnerOpt = Annotated[str | None, typer.Option("--owner", help="Value of the owner tag.")]
EnableRotationOpt = Annotated[
    bool, typer.Option("--enable-rotation", help="Turn rotation on, each secret with its own function.")
]
RotationDriverOpt = Annotated[
    str,
    typer.Option(
        "--rotation-driver",
        help="lambda: the model's functions (docs/deployment.md, section 3); local: a schedule with no "
        "function, for emulators and test stacks, rotated by `ecomind secrets rotate NAME --local`.",
    ),
]
RotationDaysOpt = Annotated[
    int | None,
    typer.Option("--rotation-days", min=1, max=1000, help=f"Default: the environment's period ({_PERIODS})."),
]
ReplicaRegionOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--replica-region",
        help="Replicate both secrets to this region too (repeatable); read there when the primary fails.",
    ),
]
UpdateOpt = Annotated[
    bool, typer.Option("--update", help="Change an existing secret where it differs from the options given.")
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Show the calls, make none.")]


@dataclass
class _Asked:
    """What provision was asked, beyond the environment: the same for each secret."""

    fields: dict[str, Any]
    kms_key_id: str | None
    owner: str | None
    replicas: list[str]
    rotation: bool
    driver: str
    days: int | None
    account: str


def provision(
    environment: DeployedOpt = None,
    db_host: DbHostOpt = None,
    region: RegionOpt = None,
    kms_key_id: KmsKeyOpt = None,
    db_name: DbNameOpt = None,
    db_user: DbUserOpt = None,
    db_port: DbPortOpt = None,
    owner: OwnerOpt = None,
    enable_rotation: EnableRotationOpt = False,
    rotation_driver: RotationDriverOpt = "lambda",
    rotation_days: RotationDaysOpt = None,
    replica_regions: ReplicaRegionOpt = None,
    update: UpdateOpt = False,
    dry_run: DryRunOpt = False,
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
            fix=rerun(region, "--rotation-driver", "local"),
        )
    client = secrets_client(region)
    plan = _Plan(dry_run, client)
    account = _account(region or client.meta.region_name) if enable_rotation and rotation_driver == "lambda" else ""
    wanted_fields = {"host": db_host, "port": db_port, "dbname": db_name, "username": db_user}
    if db_host is not None and (dburl_field_problems({"host": db_host}) or db_host.upper().startswith("YOUR")):
        fail(f"--db-host {db_host!r} is not a host name", ExitCode.USAGE, fix="--db-host db.internal.example.com")
    replicas, not_regions = parse_regions(",".join(replica_regions or []))
    if not_regions:
        fail(f"--replica-region: {', '.join(not_regions)} is not an AWS region", ExitCode.USAGE)
    plan.update = update
    asked = _Asked(
        wanted_fields,
        kms_key_id,
        owner,
        replicas,
        enable_rotation,
        rotation_driver,
        rotation_days or m.rotation_days,
        account,
    )
    for spec in m.secrets:
        _provision_one(plan, client, m, spec, asked, as_json)
    _report(plan, client, m, as_json)


def _report(plan: _Plan, client: Any, m: EnvironmentModel, as_json: bool) -> None:
    """What the plan did (JSON, or a line), and exit 1 when differences were left unapplied."""
    if as_json:
        print_json(
            {"environment": m.name, "prefix": Verbatim(m.prefix), "dry_run": plan.dry_run, "secrets": plan.secrets}
        )
    if plan.differences:
        again = rerun(region_of(client), "--update")
        fail(f"{plan.differences} difference(s) with what exists were not applied", ExitCode.FAILED, fix=again)
    if as_json:
        return
    if plan.calls == 0:
        say("nothing to do: every secret exists as asked")
    elif plan.dry_run:
        say(f"dry run: {plan.calls} call(s) would be made")


def _provision_one(
    plan: _Plan, client: Any, m: EnvironmentModel, spec: SecretSpec, asked: _Asked, as_json: bool
) -> None:
    """One secret of the environment: created, updated, replicated, its rotation turned on."""
    name = m.secret_name(spec.key)
    meta = describe_or_none(client, name)
    if meta is not None:
        refuse_a_replica(client, meta)
    if meta is not None and deletion_notice(meta):
        entry = plan.secret(name, deletion_notice(meta) or "")
        entry["fix"] = Verbatim(secrets_command(f"restore {name}", region_of(client)))
        if not as_json:
            data(f"  restore it first: {entry['fix']}")
        return
    if meta is None:
        entry = plan.secret(name, "missing")
        _create(plan, entry, client, m, spec, asked.fields, asked.kms_key_id, asked.owner, asked.replicas)
    else:
        entry = plan.secret(name, "exists")
        _update(plan, entry, client, m, spec, meta, asked.fields, asked.kms_key_id, asked.owner)
        _replicate(plan, entry, client, meta, asked.replicas, asked.kms_key_id)
    if asked.rotation:
        _enable_rotation(plan, entry, client, m, spec, meta or {}, asked)


def _enable_rotation(
    plan: _Plan,
    entry: dict[str, Any],
    client: Any,
    m: EnvironmentModel,
    spec: SecretSpec,
    current: dict[str, Any],
    asked: _Asked,
) -> None:
    """RotateSecret with the schedule (and the model's function, with the lambda driver), unless it is so already."""
    name, days = m.secret_name(spec.key), asked.days
    function = m.function_arn(client.meta.region_name, asked.account, spec.key) if asked.account else ""
    same = (
        current.get("RotationEnabled")
        # The local driver leaves a secret's function alone: it drives rotations by hand.
        and ((current.get("RotationLambdaARN") or "") == function or asked.driver == "local")
        and current.get("RotationRules", {}).get("AutomaticallyAfterDays") == days
    )
    if same:
        return
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
    plan.call(entry, shown, lambda: _rotate_secret(client, m, kwargs))


def _rotate_secret(client: Any, m: EnvironmentModel, kwargs: dict[str, Any]) -> None:
    import botocore.exceptions

    name = kwargs["SecretId"]
    emulator = on_this_machine(client.meta.endpoint_url)
    if emulator:
        from app.secrets import emulator as adapter

        before = adapter.current_version(client, name)
    try:
        client.rotate_secret(**kwargs)
        if (
            emulator
            and not kwargs.get("RotateImmediately", True)
            and adapter.undo_immediate_rotation(client, name, before)
        ):
            data(
                f"  note: the endpoint rotated {name} although RotateImmediately was false; "
                "the value it had is AWSCURRENT again",
                err=True,
            )
    except botocore.exceptions.ClientError as exc:
        function = kwargs.get("RotationLambdaARN")
        from app.secrets.aws_errors import translate_error

        # The secret was just described: not found, the function is what is missing.
        if function and type(translate_error(exc, name, "")) is SecretNotFound:
            fail(
                f"the rotation function {function} does not exist",
                ExitCode.NOT_FOUND,
                fix="create it: docs/deployment.md, section 3 (on an emulator, which runs no functions: "
                + secrets_command(
                    f"provision --environment {m.name} --enable-rotation --rotation-driver local", region_of(client)
                )
                + ")",
            )
        raise


def _replica_entries(replicas: list[str], kms_key_id: str | None) -> list[dict[str, str]]:
    # A multi-Region key (mrk-) has a replica of the same id in each region; another key
    # cannot leave its region, so the replica region's default key encrypts the replica.
    entries = []
    for region in replicas:
        entry = {"Region": region}
        if kms_key_id and "mrk-" in kms_key_id and kms_key_id.startswith("arn:"):
            entry["KmsKeyId"] = arn_in_region(kms_key_id, region)
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
            fix=rerun(region_of(client), "--db-host", placeholder=DB_HOST_PLACEHOLDER),
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
        prefix_set = f"; SECRETS_PREFIX={m.prefix} is set in your shell" if shell().prefix else ""
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
                f"rotate {name}{' --local' if on_this_machine(client.meta.endpoint_url) else ''}", region_of(client)
            )
        )
