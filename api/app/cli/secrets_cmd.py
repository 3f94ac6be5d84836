"""``ecomind secrets ...``: explicit retrieval of one secret."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from ..secrets.aws import secretsmanager_client, secretsmanager_endpoint
from ..secrets.refs import AwsRef, is_reference, parse_reference
from ..secrets.store import SecretStore
from .output import guarded

__all__ = ["app"]

app = typer.Typer(help="Provision, list, describe, read and rotate secrets.", no_args_is_help=True)


@app.command("get")
@guarded
def get(
    ref: Annotated[
        str, typer.Argument(help="A reference (arn:..., aws-secretsmanager:NAME[:KEY], file:PATH) or a secret name.")
    ],
    stage: Annotated[str | None, typer.Option("--stage", help="Version stage, e.g. AWSPENDING or AWSPREVIOUS.")] = None,
) -> None:
    """Print one resolved value on stdout, like `aws secretsmanager get-secret-value`.

    This is the one command that prints a secret, because you asked for it: pipe it,
    do not paste it. The region comes from AWS_REGION (or the ARN), the endpoint
    from AWS_ENDPOINT_URL.

    Example: ecomind secrets get aws-secretsmanager:ecomind/staging/database:password
    """
    reference = parse_reference(ref if is_reference(ref) else f"aws-secretsmanager:{ref}")
    if stage and not isinstance(reference, AwsRef):
        raise typer.BadParameter("--stage applies to Secrets Manager references only", param_hint="--stage")
    with SecretStore(region=os.environ.get("AWS_REGION"), endpoint_url=secretsmanager_endpoint()) as store:
        value = store.get(reference, stage).value.get_secret_value()
    sys.stdout.write(value + "\n")


@app.command("rotate")
def rotate(
    name: Annotated[str, typer.Argument(help="Secret name or ARN, e.g. ecomind/prod/database.")],
    strategy: Annotated[
        str | None, typer.Option("--strategy", help="single-user or alternating-users; checked against the secret.")
    ] = None,
    local: Annotated[
        bool, typer.Option("--local", help="Drive the four steps here instead of calling RotateSecret.")
    ] = False,
) -> None:
    """Rotate a secret now: the database password or the JWT secret.

    Against AWS this calls RotateSecret (the rotation Lambda does the work). With
    --local, or when AWS_ENDPOINT_URL points at an emulator (which cannot run a
    Lambda), the steps createSecret, setSecret, testSecret and finishSecret run
    here through the same handler code, with progress per step. A failed step
    exits 1 naming the step; running the command again completes the rotation.

    Example: ecomind secrets rotate ecomind/staging/database --local
    """
    from ..rotation.driver import rotate_locally, rotator_for
    from ..rotation.protocol import RotationError
    from .output import err, fail, out

    if strategy not in (None, "single-user", "alternating-users"):
        raise typer.BadParameter("use single-user or alternating-users", param_hint="--strategy")
    endpoint = secretsmanager_endpoint()
    client = secretsmanager_client(endpoint_url=endpoint)
    emulator = bool(endpoint) and any(h in endpoint for h in ("127.0.0.1", "localhost", "[::1]"))
    try:
        if not (local or emulator):
            client.rotate_secret(SecretId=name, RotateImmediately=True)
            out.print(f"rotation of {name} started by Secrets Manager; follow it with `ecomind secrets describe`")
            return
        rotator = rotator_for(client, name, strategy)
        version = rotate_locally(client, name, rotator, on_step=lambda step: err.print(f"  {step} ...", markup=False))
    except RotationError as exc:
        raise fail(f"rotation failed: {exc}; run the same command again to resume") from None
    except Exception as exc:  # noqa: BLE001 - boto errors: one line, no value
        raise fail(f"rotation failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None
    out.print(f"rotated {name}: AWSCURRENT is now version {version}")
