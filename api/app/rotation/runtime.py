"""What a handler needs from its runtime: a Secrets Manager client."""

from __future__ import annotations

import os
from typing import Any

import boto3

from ..secrets.aws import client_config


def secretsmanager_client() -> Any:
    # Lambda sets AWS_REGION; SECRETS_MANAGER_ENDPOINT is the VPC endpoint when
    # the function has no route to the public one.
    endpoint = os.environ.get("SECRETS_MANAGER_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL")
    return boto3.client("secretsmanager", endpoint_url=endpoint, config=client_config())
