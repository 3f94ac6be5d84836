"""`ecomind doctor`: what it diagnoses and the fix it prints, run as printed (moto's server;
IAM enforced where a role or a key is refused)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ..conftest import CANARY, Aws, Cli, assert_clean
from ..support.awsproxy import AwsProxy
from ..support.services import MotoServer
from .conftest import admin_client

JWT = "k" * 48
DB = "postgresql://u:Pw-1234567@127.0.0.1:1/db"


def doctor(cli: Cli, env: dict[str, str], *args: str) -> tuple[int, dict[str, dict[str, Any]], str]:
    result = cli("doctor", "--json", "--timeout", "1", *args, env=env)
    assert_clean(result)
    report = json.loads(result.stdout)
    assert report["exit_code"] == result.returncode
    return result.returncode, {c["name"]: c for c in report["checks"]}, result.stdout + result.stderr


def no_denial_diagnosed(checks: dict[str, dict[str, Any]]) -> None:
    """Nothing was denied by a policy: no check says so, no fix is a policy to attach."""
    for check in checks.values():
        assert "access denied" not in check["detail"], check
        assert '"Statement"' not in check["fix"] and "attach" not in check["fix"], check


@pytest.fixture
def production_secrets(iam: tuple[MotoServer, dict[str, str]]) -> dict[str, str]:
    sm = admin_client(iam)
    for name, value in (("ecomind/prod/database", DB), ("ecomind/prod/jwt", JWT)):
        if name not in {s["Name"] for s in sm.list_secrets()["SecretList"]}:
            sm.create_secret(Name=name, SecretString=value)
    return {**iam[1], "ENVIRONMENT": "production"}


# -- credentials AWS refuses are not a denial --------------------------------------------


def test_an_access_key_id_aws_does_not_know_is_diagnosed_as_such_not_as_a_denial(
    cli: Cli, production_secrets: dict[str, str]
) -> None:
    env = {**production_secrets, "AWS_ACCESS_KEY_ID": "unknown-access-key-id", "AWS_SECRET_ACCESS_KEY": CANARY}
    code, checks, _ = doctor(cli, env)
    assert code == 1
    creds = checks["AWS credentials"]
    assert creds["status"] == "fail" and "found (env), but refused" in creds["detail"]
    assert "does not recognise the access key id" in creds["detail"]
    assert creds["fix"].startswith("aws configure list")
    readable = checks["JWT_SECRET readable"]
    assert readable["status"] == "fail" and "AWS refused the credentials" in readable["detail"]
    no_denial_diagnosed(checks)
    read = cli("secrets", "get", "ecomind/prod/jwt", env=env)
    assert read.returncode == 5 and "does not recognise the access key id" in read.stderr, read.stderr
    assert_clean(read, JWT)


def test_a_secret_key_that_is_not_the_key_ids_is_a_signature_mismatch(
    cli: Cli, production_secrets: dict[str, str]
) -> None:
    env = {**production_secrets, "AWS_SECRET_ACCESS_KEY": CANARY}  # the administrator's key id, another secret key
    code, checks, _ = doctor(cli, env)
    assert code == 1
    creds = checks["AWS credentials"]
    assert creds["status"] == "fail" and "the secret access key does not belong to the access key id" in creds["detail"]
    assert "set the secret access key that belongs to it" in creds["fix"]
    no_denial_diagnosed(checks)


def test_credentials_aws_takes_are_named_by_who_they_are(cli: Cli, production_secrets: dict[str, str]) -> None:
    _, checks, _ = doctor(cli, production_secrets)
    creds = checks["AWS credentials"]
    assert creds["status"] == "ok" and creds["detail"] == "arn:aws:iam::123456789012:user/admin (from env)"


def test_an_expired_session_token_says_to_refresh_the_session(cli: Cli, aws: Aws, proxy: AwsProxy) -> None:
    # moto never expires a token: the proxy answers as AWS does, STS in XML, Secrets Manager in JSON.
    expired = "The security token included in the request is expired"
    sts = (
        "<ErrorResponse><Error><Type>Sender</Type><Code>ExpiredToken</Code>"
        f"<Message>{expired}</Message></Error></ErrorResponse>"
    )
    sm = json.dumps({"__type": "ExpiredTokenException", "message": expired})
    proxy.answer = lambda op: (
        (403, "text/xml", sts.encode())
        if op == "GetCallerIdentity"
        else (400, "application/x-amz-json-1.1", sm.encode())
    )
    env = {**aws.env, "AWS_SESSION_TOKEN": "a-session-token", "ENVIRONMENT": "production"}
    code, checks, _ = doctor(cli, env)
    assert code == 1
    creds = checks["AWS credentials"]
    assert creds["status"] == "fail" and "the session token of these credentials has expired" in creds["detail"]
    assert creds["fix"].startswith("aws sso login") and "assume it again" in creds["fix"]
    no_denial_diagnosed(checks)
    read = cli("secrets", "get", "ecomind/prod/jwt", env=env)
    assert read.returncode == 5 and "has expired" in read.stderr and "aws sso login" in read.stderr
