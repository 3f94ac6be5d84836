"""Secrets Manager clients with this layer's timeouts and retries, and the endpoint override checked.

Clients come from botocore, boto3's core, directly: importing boto3 also imports
s3transfer and costs tens of milliseconds that every ``ecomind run`` in front of a
migration or an entrypoint would pay for nothing. The backend (app/secrets/aws.py), the CLI
and the rotation handlers all make theirs here.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, cast

import botocore.session
from botocore.config import Config

from app.secrets.endpoints import secretsmanager_endpoint
from app.secrets.errors import InvalidEndpoint

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
else:
    SecretsManagerClient = Any

__all__ = ["checked_endpoint", "client_config", "new_session", "secretsmanager_client"]


def secretsmanager_client(region: str | None = None, endpoint_url: str | None = None) -> SecretsManagerClient:
    """A plain client with this layer's timeouts and retries (for the CLI and rotation handlers)."""
    client = new_session().create_client(
        "secretsmanager",
        region_name=region or os.environ.get("AWS_REGION"),
        endpoint_url=checked_endpoint(endpoint_url or secretsmanager_endpoint()),
        config=client_config(),
    )
    return cast("SecretsManagerClient", client)


def checked_endpoint(endpoint: str | None) -> str | None:
    """``endpoint``, when botocore takes it; else the configuration error it is, naming the
    variable that holds it (botocore would raise a bare ValueError making the client)."""
    from botocore.utils import is_valid_endpoint_url, is_valid_ipv6_endpoint_url

    if not endpoint or is_valid_endpoint_url(endpoint) or is_valid_ipv6_endpoint_url(endpoint):
        return endpoint
    variable = next(
        (name for name in ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL") if os.environ.get(name) == endpoint),
        None,
    )
    said = f"{endpoint!r} is not a URL: an endpoint override is http(s)://HOST[:PORT]"
    if variable is None:
        raise InvalidEndpoint(f"the endpoint override {said}", fix="ecomind doctor")
    raise InvalidEndpoint(
        said,
        fix=f"unset {variable}   # Secrets Manager's own endpoint; for an emulator on this machine: "
        f"export {variable}=http://127.0.0.1:PORT",
        variable=variable,
    )


def new_session() -> botocore.session.Session:
    """A botocore session: credentials, region and endpoints resolved as boto3 resolves them."""
    return botocore.session.get_session()


def client_config(attempts: int = 3, connect_timeout: float = 3, read_timeout: float = 10) -> Config:
    """botocore's standard retries, ``attempts`` in all (the first included), and short timeouts.

    Short connect timeout: an unreachable endpoint at start must fail fast, not after
    botocore's default 60 s per attempt. (``total_max_attempts`` counts the first
    attempt; botocore's ``max_attempts`` would count retries only.)
    """
    return Config(
        retries={"mode": "standard", "total_max_attempts": attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=16,
    )
