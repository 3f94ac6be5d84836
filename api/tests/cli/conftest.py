"""What the CLI tests share: a printed fix run as printed, and moto with IAM enforced."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from ..conftest import ECOMIND, REGION
from ..support.services import MotoServer


def run_fix(fix: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """A printed fix, run exactly as printed (in bash, with ecomind on the PATH)."""
    path = f"{Path(ECOMIND).parent}:{os.environ['PATH']}"
    return subprocess.run(
        ["bash", "-c", fix], env={**env, "PATH": path}, cwd=cwd, capture_output=True, text=True, timeout=120
    )


# -- IAM enforced, for roles that may do less -----------------------------------------------


@pytest.fixture(scope="module")
def iam() -> Iterator[tuple[MotoServer, dict[str, str]]]:
    server = MotoServer(env={"INITIAL_NO_AUTH_ACTION_COUNT": "3"}).start()
    kw = {"region_name": REGION, "endpoint_url": server.url, "aws_access_key_id": "x", "aws_secret_access_key": "x"}
    client = boto3.client("iam", **kw)
    client.create_user(UserName="admin")
    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    client.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(everything))
    key = client.create_access_key(UserName="admin")["AccessKey"]
    admin = {
        "AWS_ENDPOINT_URL": server.url,
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
        "AWS_REGION": REGION,
    }
    yield server, admin
    server.stop()


def user_with(iam: tuple[MotoServer, dict[str, str]], name: str, statements: list[dict[str, Any]]) -> dict[str, str]:
    server, admin = iam
    client = boto3.client(
        "iam",
        region_name=REGION,
        endpoint_url=server.url,
        aws_access_key_id=admin["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=admin["AWS_SECRET_ACCESS_KEY"],
    )
    client.create_user(UserName=name)
    policy = {"Version": "2012-10-17", "Statement": statements}
    client.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    key = client.create_access_key(UserName=name)["AccessKey"]
    return {**admin, "AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


def admin_client(iam: tuple[MotoServer, dict[str, str]], region: str = REGION) -> Any:
    server, admin = iam
    return boto3.client(
        "secretsmanager",
        region_name=region,
        endpoint_url=server.url,
        aws_access_key_id=admin["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=admin["AWS_SECRET_ACCESS_KEY"],
    )
