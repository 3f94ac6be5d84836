"""moto with IAM enforced, for roles that may do less: one administrator made while moto lets the
first calls through, then users with the statements a test gives them."""

from __future__ import annotations

import json
from typing import Any

import boto3

from .services import MotoServer

__all__ = ["REGION", "IamMoto", "admin_client", "start_iam_moto", "user_with"]

REGION = "us-east-1"
# (server, the administrator's environment): what the fixtures iam and stock_iam give.
IamMoto = tuple[MotoServer, dict[str, str]]
# moto enforces IAM after this many calls: the administrator's user, policy and access key below.
SETUP_CALLS = 3


def start_iam_moto(*, stock: bool = False, env: dict[str, str] | None = None, admin: str = "admin") -> IamMoto:
    """moto (the project's server, or stock moto_server) enforcing IAM, and an administrator allowed everything,
    named ``admin``. ``env``: more of moto's settings (MOTO_IAM_LOAD_MANAGED_POLICIES, say)."""
    server = MotoServer(env={"INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_CALLS), **(env or {})}, stock=stock).start()
    kw = {"region_name": REGION, "endpoint_url": server.url, "aws_access_key_id": "x", "aws_secret_access_key": "x"}
    client = boto3.client("iam", **kw)
    client.create_user(UserName=admin)
    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    client.put_user_policy(UserName=admin, PolicyName="all", PolicyDocument=json.dumps(everything))
    key = client.create_access_key(UserName=admin)["AccessKey"]
    return server, {
        "AWS_ENDPOINT_URL": server.url,
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
        "AWS_REGION": REGION,
    }


def _admin(iam: IamMoto, service: str, region: str = REGION) -> Any:
    server, admin = iam
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=server.url,
        aws_access_key_id=admin["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=admin["AWS_SECRET_ACCESS_KEY"],
    )


def user_with(iam: IamMoto, name: str, statements: list[dict[str, Any]]) -> dict[str, str]:
    """A user allowed ``statements`` (none: no policy at all), as the environment that signs as it."""
    client = _admin(iam, "iam")
    client.create_user(UserName=name)
    if statements:
        policy = {"Version": "2012-10-17", "Statement": statements}
        client.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    key = client.create_access_key(UserName=name)["AccessKey"]
    return {**iam[1], "AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


def admin_client(iam: IamMoto, region: str = REGION) -> Any:
    """Secrets Manager as the administrator."""
    return _admin(iam, "secretsmanager", region)
