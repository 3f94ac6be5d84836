"""``ecomind secrets rotate``: a rotation by Secrets Manager (RotateSecret), or its four steps here."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli.fixes import MASTER_URL_FILE_PLACEHOLDER, by_operator, by_rotation_role, master_url_note, secrets_command
from app.cli.options import JsonOpt, RegionOpt
from app.cli.output import ExitCode, Verbatim, data, fail, print_json
from app.cli.secrets.calls import SecretName, aws_errors, existing, region_of, rerun, rerun_in, secrets_client
from app.cli.secrets.kinds import deletion_notice, environment_of, model_secret
from app.secrets.endpoints import on_this_machine
from app.secrets.errors import SecretAccessDenied

__all__ = ["rotate"]


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
            again = rerun(region, option, placeholder=MASTER_URL_FILE_PLACEHOLDER, drop=option)
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


StrategyOpt = Annotated[
    str | None, typer.Option("--strategy", help="single-user or alternating-users; checked against the secret.")
]
LocalOpt = Annotated[bool, typer.Option("--local", help="Drive the four steps here instead of calling RotateSecret.")]
MasterUrlFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--master-url-file",
        help="With --local, when neither stored password of a database secret logs in: a file holding the "
        "master user's URL, postgresql://MASTER_USER:MASTER_PASSWORD@HOST:PORT/postgres. Without it: "
        "ECOMIND_MASTER_URL, else a prompt (not echoed) in a terminal.",
    ),
]


def rotate(
    name: SecretName,
    strategy: StrategyOpt = None,
    local: LocalOpt = False,
    master_url_file: MasterUrlFileOpt = None,
    region: RegionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rotate a secret now: the database password or the JWT secret.

    By default this calls RotateSecret and the secret's rotation function does the
    work. With --local the steps createSecret, setSecret, testSecret and finishSecret
    run here through the same handler code (for emulators, which cannot run a
    function, and for an operator shell that reaches the database); progress is shown
    per step. A failed step exits non-zero naming it; the same command resumes (a step this
    role may not take exits 5 naming the role that may).
    A database whose role no longer takes either stored password is re-passworded by its
    master user, whose URL is read (only then) from --master-url-file, ECOMIND_MASTER_URL
    or a prompt: never from the command line.

    Example: ecomind secrets rotate ecomind/staging/database --local
    """
    if strategy not in (None, "single-user", "alternating-users"):
        fail("--strategy is single-user or alternating-users", ExitCode.USAGE)
    client = secrets_client(region)
    try:
        meta = existing(client, name, writes=True)
    except SecretAccessDenied as denied:
        if type(denied) is not SecretAccessDenied:  # the credentials, not a policy
            raise
        raise _refused(client, name, denied.message, local) from None
    if deletion_notice(meta):
        restore = secrets_command(f"restore {name}", region_of(client))
        fail(f"{name} is {deletion_notice(meta)}", ExitCode.NOT_FOUND, fix=restore)
    if not meta.get("RotationEnabled"):
        env = environment_of(meta)
        driver = " --rotation-driver local" if local else ""
        fail(
            f"rotation is not enabled on {name}",
            ExitCode.CONFIG,
            fix=secrets_command(f"provision --environment {env} --enable-rotation{driver}", region_of(client))
            if env
            else "tag the secret environment=staging or environment=production, then run "
            f"ecomind secrets provision --enable-rotation{driver} for that environment",
        )
    if local:
        _rotate_here(client, name, strategy, _master_url(master_url_file, region_of(client)), as_json)
    else:
        _rotate_by_secrets_manager(client, name, meta, as_json)


def _refused(client: Any, name: str, message: str, local: bool) -> SecretAccessDenied:
    """This role may not rotate ``name``: the same command, by the role the model says may (the
    rotation role's four steps with --local; RotateSecret is the operator's)."""
    found = model_secret(name)
    m = found[0] if found else None
    who = by_rotation_role(m) if local else by_operator(m)
    return SecretAccessDenied(message, reference=name, fix=f"{rerun_in(region_of(client))}   # {who}")


def _denied_step(exc: BaseException, name: str, client: Any) -> SecretAccessDenied | None:
    """The access denial that stopped a step (createSecret's PutSecretValue...), if one did."""
    import botocore.exceptions

    from app.secrets.aws_errors import translate_error

    cause = exc.__cause__
    if not isinstance(cause, botocore.exceptions.ClientError):
        return None
    error = translate_error(cause, name, str(client.meta.endpoint_url))
    return error if type(error) is SecretAccessDenied else None


def _rotate_by_secrets_manager(client: Any, name: str, meta: dict[str, Any], as_json: bool) -> None:
    """RotateSecret: the secret's function does the work (refused where no function would run)."""
    if on_this_machine(client.meta.endpoint_url):
        # An emulator's function answers without running: RotateSecret there would stage a
        # version with no value, report success and leave readers on AWSCURRENT with nothing.
        found = model_secret(name)
        who = by_rotation_role(found[0] if found else None)
        fail(
            f"AWS_ENDPOINT_URL is on this machine: an emulator runs no rotation function, so "
            f"RotateSecret would not rotate {name}",
            ExitCode.CONFIG,
            fix=rerun(region_of(client), "--local") + f"   # the four steps, here; {who}",
        )
    if not meta.get("RotationLambdaARN"):
        fail(
            f"{name} has no rotation function",
            ExitCode.CONFIG,
            fix=rerun(region_of(client), "--local") + "   # or attach the function: docs/deployment.md, section 3",
        )
    with aws_errors(name, client):
        client.rotate_secret(SecretId=name, RotateImmediately=True)
    if as_json:
        print_json({"name": Verbatim(name), "state": "started"})
    else:
        follow = secrets_command(f"history {name}", region_of(client))
        data(f"rotation of {name} started by Secrets Manager; follow it with: {follow}")


def _rotate_here(client: Any, name: str, strategy: str | None, master: Callable[[], str | None], as_json: bool) -> None:
    """The four steps here, through the handler code; a failed step names itself and the command that resumes."""
    from app.rotation.driver import rotate_locally, rotator_for
    from app.rotation.protocol import RotationError

    try:
        with aws_errors(name, client):
            rotator = rotator_for(client, name, strategy, master_url=master)
            version = rotate_locally(
                client, name, rotator, on_step=lambda step: None if as_json else data(f"  {step} ...", err=True)
            )
    except RotationError as exc:
        denied = _denied_step(exc, name, client)
        if denied is not None:  # the same command by this role would be refused again: who may run it
            raise _refused(client, name, f"rotation stopped: {exc}: {denied.message}", local=True) from None
        fix = rerun(region_of(client)) + "   # resumes"
        if "neither AWSCURRENT nor AWSPREVIOUS logs in" in str(exc):
            m = model_secret(name)
            fix = rerun(
                region_of(client),
                "--master-url-file",
                placeholder=MASTER_URL_FILE_PLACEHOLDER,
                drop="--master-url-file",
            )
            fix += f"   # {master_url_note()}; {by_rotation_role(m[0] if m else None)}"
        fail(f"rotation failed: {exc}", ExitCode.FAILED, fix=fix)
    if as_json:
        print_json({"name": Verbatim(name), "state": "rotated", "version": Verbatim(version)})
    else:
        data(f"rotated {name}: AWSCURRENT is now version {version}")
