"""``ecomind secrets ...``: explicit retrieval of one secret."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from ..secrets.refs import AwsRef, is_reference, parse_reference
from ..secrets.store import SecretStore
from .output import guarded

__all__ = ["app"]

app = typer.Typer(help="Read secrets from AWS Secrets Manager or mounted files.", no_args_is_help=True)


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
    with SecretStore(
        region=os.environ.get("AWS_REGION"),
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL_SECRETS_MANAGER") or os.environ.get("AWS_ENDPOINT_URL"),
    ) as store:
        value = store.get(reference, stage).value.get_secret_value()
    sys.stdout.write(value + "\n")
