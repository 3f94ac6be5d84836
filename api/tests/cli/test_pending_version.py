"""`ecomind doctor` flags a rotation left unfinished: a version AWSPENDING without AWSCURRENT
for longer than the secret's rotation window (moto's server; IAM enforced for the denial).

moto dates a version "now" whenever it lists it, so an old pending version is made by
judging as of a later date: the doctor's own `--as-of`.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.rotation.driver import rotate_locally, rotator_for
from app.secrets.environment import model, rotation_window

from ..conftest import CANARY, Aws, Cli, Database, assert_clean
from ..support.iam import admin_client, user_with
from ..support.services import MotoServer
from .conftest import run_fix

JWT_NAME = model("staging").secret_name("jwt")
PENDING = "p" * 48  # the value a stopped rotation left AWSPENDING


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%S")


def doctor(cli: Cli, env: dict[str, str], *args: str) -> tuple[int, dict[str, dict[str, Any]]]:
    result = cli("doctor", "--json", "--timeout", "2", *args, env=env)
    assert_clean(result, PENDING)
    report = json.loads(result.stdout)
    assert report["exit_code"] == result.returncode
    return result.returncode, {c["name"]: c for c in report["checks"]}


def stop_a_rotation(client: Any) -> str:
    """The JWT secret of staging, rotation on, and a version a rotation left AWSPENDING: its id."""
    client.create_secret(Name=JWT_NAME, SecretString=CANARY)  # 43 bytes: a JWT secret staging accepts
    days = model("staging").rotation_days
    client.rotate_secret(SecretId=JWT_NAME, RotationRules={"AutomaticallyAfterDays": days}, RotateImmediately=False)
    put = client.put_secret_value(SecretId=JWT_NAME, SecretString=PENDING, VersionStages=["AWSPENDING"])
    return str(put["VersionId"])


@pytest.fixture
def staging(database: Database) -> dict[str, str]:
    # The database from the environment (staging tolerates sslmode=disable; the test server has
    # no SSL), the JWT secret from Secrets Manager: only JWT_SECRET has a rotation to judge.
    return {"ENVIRONMENT": "staging", "DATABASE_URL": database.url() + "?sslmode=disable"}


@pytest.mark.slow
def test_a_pending_version_older_than_the_window_fails_with_a_fix_that_runs(
    cli: Cli, aws: Aws, staging: dict[str, str]
) -> None:
    env = {**aws.env, **staging}
    version = stop_a_rotation(aws.client)

    code, fresh = doctor(cli, env)
    assert code == 0, fresh
    check = fresh["JWT_SECRET pending version"]
    assert check["status"] == "ok" and version in check["detail"]
    assert "within the rotation window (24 h" in check["detail"]

    code, old = doctor(cli, env, "--as-of", later(days=2, minutes=30))
    assert code == 1
    check = old["JWT_SECRET pending version"]
    assert check["status"] == "fail"
    assert f"{JWT_NAME}: version {version} has been AWSPENDING without AWSCURRENT for 2 days" in check["detail"]
    assert "longer than the rotation window (24 h, Secrets Manager's default for a schedule in days)" in check["detail"]
    resume = f"ecomind secrets rotate {JWT_NAME} --local --region us-east-1   # resumes version {version}"
    assert check["fix"].startswith(resume), check["fix"]
    assert [c["name"] for c in old.values() if c["status"] == "fail"] == ["JWT_SECRET pending version"]

    ran = run_fix(check["fix"], env, cli.cwd)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert_clean(ran, PENDING)
    current = aws.client.get_secret_value(SecretId=JWT_NAME, VersionStage="AWSCURRENT")
    assert (current["VersionId"], current["SecretString"]) == (version, PENDING)  # resumed, not replaced
    code, after = doctor(cli, env, "--as-of", later(days=2, minutes=30))
    assert code == 0 and after["JWT_SECRET pending version"]["status"] == "ok"


def test_a_denied_listing_is_not_checked_never_passed(
    iam: tuple[MotoServer, dict[str, str]], cli: Cli, staging: dict[str, str]
) -> None:
    stop_a_rotation(admin_client(iam))
    may_not_list = user_with(
        iam,
        "no-list-versions",
        [
            {
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                "Resource": "arn:aws:secretsmanager:*:*:secret:ecomind/staging/*",
            },
            {"Effect": "Allow", "Action": "secretsmanager:BatchGetSecretValue", "Resource": "*"},
        ],
    )
    code, checks = doctor(cli, {**may_not_list, **staging}, "--as-of", later(days=2))
    check = checks["JWT_SECRET pending version"]
    assert check["status"] == "not_checked"
    assert "secretsmanager:ListSecretVersionIds denied" in check["detail"]
    assert code == 8, checks  # nothing failed, one check could not run
    # Without DescribeSecret, the window is unknown: not checked either.
    may_not_describe = user_with(
        iam,
        "no-describe",
        [
            {
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:ListSecretVersionIds"],
                "Resource": "arn:aws:secretsmanager:*:*:secret:ecomind/staging/*",
            },
            {"Effect": "Allow", "Action": "secretsmanager:BatchGetSecretValue", "Resource": "*"},
        ],
    )
    code, checks = doctor(cli, {**may_not_describe, **staging}, "--as-of", later(days=2))
    assert checks["JWT_SECRET pending version"]["status"] == "not_checked" and code == 8, checks


@pytest.mark.parametrize(
    ("rules", "hours", "source"),
    [
        ({}, 24, "default for a schedule in days"),
        ({"AutomaticallyAfterDays": 30}, 24, "default for a schedule in days"),
        ({"ScheduleExpression": "rate(10 days)"}, 24, "default for a schedule in days"),
        ({"ScheduleExpression": "cron(0 16 L * ? *)"}, 24, "default for a schedule in days"),
        ({"ScheduleExpression": "rate(4 hours)"}, 1, "default for a schedule in hours"),
        ({"ScheduleExpression": "cron(0 4/12 * * ? *)"}, 1, "default for a schedule in hours"),
        ({"ScheduleExpression": "cron(0 16 * * ? *)", "Duration": "3h"}, 3, "Duration 3h"),
    ],
)
def test_the_rotation_window_is_the_secrets_rules_or_secrets_managers_default(
    rules: dict[str, object], hours: int, source: str
) -> None:
    got_hours, got_source = rotation_window(rules)
    assert got_hours == hours and source in got_source


def test_a_stale_pending_version_is_discarded_not_resumed_forever(aws: Aws, database: Database) -> None:
    import os

    os.environ["ENVIRONMENT"] = "development"  # the test server has no SSL
    try:
        aws.create("rot/stale", database.rds_secret())
        aws.client.rotate_secret(
            SecretId="rot/stale", RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False
        )
        # A rotation started while the secret named a host that is gone, then the host was fixed.
        token = str(uuid.uuid4())
        pending = json.loads(database.rds_secret()) | {"host": "db.gone.invalid", "password": "x" * 32}
        aws.client.put_secret_value(
            SecretId="rot/stale",
            ClientRequestToken=token,
            SecretString=json.dumps(pending),
            VersionStages=["AWSPENDING"],
        )
        steps: list[str] = []
        version = rotate_locally(aws.client, "rot/stale", rotator_for(aws.client, "rot/stale"), on_step=steps.append)
        assert version != token and any("discarded AWSPENDING" in s for s in steps)
        current = json.loads(aws.client.get_secret_value(SecretId="rot/stale")["SecretString"])
        assert current["host"] == "127.0.0.1"
    finally:
        os.environ.pop("ENVIRONMENT", None)
