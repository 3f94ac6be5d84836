"""The one translator of botocore's errors, against moto's server with IAM enforced."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.secrets.aws import AwsSecretsManagerBackend
from app.secrets.errors import (
    BadCredentials,
    CredentialsConfigError,
    InvalidAccessKey,
    SecretAccessDenied,
    SignatureMismatch,
)
from app.secrets.refs import parse_reference

from ..conftest import REGION
from ..support.services import MotoServer


def read_with(iam_moto: tuple[MotoServer, dict[str, str]], monkeypatch: pytest.MonkeyPatch, **creds: str) -> object:
    server, env = iam_moto
    for name, value in {**env, **creds}.items():
        monkeypatch.setenv(name, value)
    backend = AwsSecretsManagerBackend(default_region=REGION, endpoint_url=server.url)
    try:
        return backend.get(parse_reference("aws-secretsmanager:ecomind/prod/jwt"))  # type: ignore[arg-type]
    finally:
        backend.close()


def test_an_unknown_access_key_id_is_an_invalid_key_not_a_denial(
    iam_moto: tuple[MotoServer, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    got = read_with(iam_moto, monkeypatch, AWS_ACCESS_KEY_ID="unknown-access-key-id")
    assert isinstance(got, InvalidAccessKey) and got.kind == "denied"
    assert "access key id" in got.message and "aws configure list" in got.fix


def test_a_wrong_secret_key_is_a_signature_mismatch(
    iam_moto: tuple[MotoServer, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    got = read_with(iam_moto, monkeypatch, AWS_SECRET_ACCESS_KEY="not-the-secret-key")
    assert isinstance(got, SignatureMismatch)


def test_a_policy_that_grants_nothing_is_a_denial_of_good_credentials(
    iam_moto: tuple[MotoServer, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    got = read_with(iam_moto, monkeypatch)  # ecomind-api: a known key, no policy
    assert isinstance(got, SecretAccessDenied) and not isinstance(got, BadCredentials)
    assert "ecomind doctor" in got.fix


def test_a_profile_that_does_not_exist_is_a_credentials_error_not_a_failure(
    iam_moto: tuple[MotoServer, dict[str, str]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    got = read_with(iam_moto, monkeypatch, AWS_PROFILE="nosuch")
    assert isinstance(got, CredentialsConfigError) and got.kind == "denied", got
    assert "profile nosuch (AWS_PROFILE) does not exist" in got.message
    assert got.fix.startswith("unset AWS_PROFILE") and "aws configure list-profiles" in got.fix
