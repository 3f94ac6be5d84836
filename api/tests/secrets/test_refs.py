from pathlib import Path

import pytest

from app.secrets.errors import MalformedReference
from app.secrets.refs import AwsRef, FileRef, default_reference, is_reference, parse_reference

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecomind/prod/database-AbCdEf"


def test_ecs_value_from_with_json_key_and_empty_stage_and_version() -> None:
    ref = parse_reference(ARN + ":connection_string::")
    assert isinstance(ref, AwsRef)
    assert ref.secret_id == ARN
    assert ref.region == "us-east-1"
    assert ref.json_key == "connection_string"
    assert ref.version_stage is None and ref.version_id is None


def test_ecs_value_from_plain_arn_means_whole_secret() -> None:
    ref = parse_reference(ARN)
    assert isinstance(ref, AwsRef)
    assert ref.json_key is None and ref.secret_id == ARN


def test_empty_json_key_with_stage_means_whole_secret_at_that_stage() -> None:
    ref = parse_reference(ARN + "::AWSPREVIOUS:")
    assert isinstance(ref, AwsRef)
    assert (ref.json_key, ref.version_stage) == (None, "AWSPREVIOUS")


def test_version_id_form() -> None:
    ref = parse_reference("aws-secretsmanager:ecomind/staging/jwt::" + ":" + "0f3c")
    assert isinstance(ref, AwsRef)
    assert ref.version_id == "0f3c" and ref.version_stage is None


def test_short_form_takes_region_from_environment() -> None:
    ref = parse_reference("aws-secretsmanager:ecomind/staging/database:password")
    assert ref == AwsRef(
        "ecomind/staging/database", None, "password", text="aws-secretsmanager:ecomind/staging/database:password"
    )


def test_file_reference() -> None:
    ref = parse_reference("file:/run/secrets/jwt")
    assert ref == FileRef(Path("/run/secrets/jwt"), "file:/run/secrets/jwt")


def test_with_stage_keeps_the_key_and_drops_a_version_id() -> None:
    ref = parse_reference("aws-secretsmanager:a/b:password::v1")
    assert isinstance(ref, AwsRef)
    pending = ref.with_stage("AWSPENDING")
    assert (pending.json_key, pending.version_stage, pending.version_id) == ("password", "AWSPENDING", None)
    assert str(pending) == "aws-secretsmanager:a/b:password:AWSPENDING"


def test_defaults_for_staging_and_production() -> None:
    assert str(default_reference("ecomind/prod", "database")) == "aws-secretsmanager:ecomind/prod/database"
    assert default_reference("ecomind/staging/", "jwt").secret_id == "ecomind/staging/jwt"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (ARN + ":password:AWSCURRENT:0f3c", "both a version stage and a version id"),
        ("aws-secretsmanager:a:b:c:d:e", "at most 3"),
        ("aws-secretsmanager:", "no valid secret name"),
        ("aws-secretsmanager:bad name", "no valid secret name"),
        ("arn:aws:secretsmanager:us-east-1:123:secret:x", "12 digits"),
        ("arn:aws:secretsmanager:nowhere:123456789012:secret:x", "not an AWS region"),
        ("arn:aws:secretsmanager:us-east-1:123456789012:parameter:x", "not a Secrets Manager ARN"),
        ("file:", "no path"),
    ],
)
def test_malformed_references_say_what_is_wrong(text: str, needle: str) -> None:
    with pytest.raises(MalformedReference) as info:
        parse_reference(text)
    assert needle in str(info.value)
    assert "fix:" in str(info.value)


def test_values_are_not_mistaken_for_references() -> None:
    assert not is_reference("postgresql://u:p@h/db")
    assert not is_reference("a-jwt-secret")
    assert is_reference(ARN) and is_reference("file:/x") and is_reference("aws-secretsmanager:x")
