"""Where Secrets Manager is: the endpoint override, and whether it is an emulator on this machine.

Standard library only: settings read it before (and without) building any AWS client.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

__all__ = ["on_this_machine", "secretsmanager_endpoint"]


def secretsmanager_endpoint(env: Mapping[str, str] | None = None) -> str | None:
    """The endpoint override, as boto3 itself reads it: service-specific first, then global."""
    env = os.environ if env is None else env
    return env.get("AWS_ENDPOINT_URL_SECRETS_MANAGER") or env.get("AWS_ENDPOINT_URL") or None


def on_this_machine(endpoint: str | None) -> bool:
    """Whether an endpoint override points at this machine: an emulator (moto, LocalStack).

    AWS_ENDPOINT_URL also sets VPC and FIPS endpoints, which are AWS: only loopback counts.
    """
    if not endpoint:
        return False
    try:
        host = urlsplit(endpoint).hostname
    except ValueError:
        return False
    return host in ("127.0.0.1", "localhost", "::1")
