"""Rotation handlers on real PostgreSQL (password auth) and moto, driven step by step."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from app.data.failures import classify
from app.rotation.driver import rotate_locally, rotator_for
from app.rotation.jwt import JwtRotator
from app.rotation.postgres import PostgresRotator
from app.rotation.protocol import STEPS, RotationError
from app.secrets.urls import url_password

from ..conftest import CANARY, ECOMIND, Aws, Cli, Database, assert_clean


@pytest.fixture(autouse=True)
def _development(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # The test server has no SSL; the policy of production would (rightly) refuse it.
    monkeypatch.setenv("ENVIRONMENT", "development")


def enable_rotation(aws: Aws, name: str) -> None:
    aws.client.rotate_secret(SecretId=name, RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False)


def stage(aws: Aws, name: str, label: str) -> dict[str, Any]:
    return dict(json.loads(aws.client.get_secret_value(SecretId=name, VersionStage=label)["SecretString"]))


def logs_in(data: dict[str, Any]) -> bool:
    try:
        psycopg.connect(
            host=data["host"],
            port=data["port"],
            dbname=data["dbname"],
            user=data["username"],
            password=data["password"],
            connect_timeout=5,
        ).close()
    except psycopg.OperationalError as exc:
        assert classify(exc).kind == "auth", exc
        return False
    return True


def test_single_user_rotates_three_times(aws: Aws, database: Database) -> None:
    aws.create("rot/single", database.rds_secret())
    enable_rotation(aws, "rot/single")
    rotator = rotator_for(aws.client, "rot/single", "single-user")
    seen = {database.password}
    for _ in range(3):
        before = stage(aws, "rot/single", "AWSCURRENT")
        rotate_locally(aws.client, "rot/single", rotator)
        current, previous = stage(aws, "rot/single", "AWSCURRENT"), stage(aws, "rot/single", "AWSPREVIOUS")
        assert previous["password"] == before["password"]
        assert logs_in(current) and not logs_in(previous)
        assert current["password"] not in seen and not set(current["password"]) & set(":/@\"'\\")
        assert "connection_string" not in current  # one shape: provision, CloudFormation and rotation agree
        seen.add(current["password"])
    assert "AWSPENDING" not in str(aws.client.describe_secret(SecretId="rot/single")["VersionIdsToStages"])


def test_a_legacy_connection_string_is_rewritten_with_the_password(aws: Aws, database: Database) -> None:
    aws.create("rot/legacy", database.rds_secret(connection_string=database.url()))
    enable_rotation(aws, "rot/legacy")
    rotate_locally(aws.client, "rot/legacy", rotator_for(aws.client, "rot/legacy"))
    current = stage(aws, "rot/legacy", "AWSCURRENT")
    assert url_password(current["connection_string"]) == current["password"] != database.password
    assert logs_in(current)


def test_every_step_can_run_twice(aws: Aws, database: Database) -> None:
    aws.create("rot/twice", database.rds_secret())
    enable_rotation(aws, "rot/twice")
    rotator = PostgresRotator(aws.client)
    token = "0f1e2d3c-4b5a-6978-8877-665544332211"
    for step in STEPS:
        for _ in range(2):
            rotator.run({"SecretId": "rot/twice", "ClientRequestToken": token, "Step": step, "LocalDriver": True})
    assert logs_in(stage(aws, "rot/twice", "AWSCURRENT"))
    # Once AWSCURRENT, every step is a no-op.
    for step in STEPS:
        rotator.run({"SecretId": "rot/twice", "ClientRequestToken": token, "Step": step})


def test_crash_between_set_and_finish_then_rerun_completes(aws: Aws, database: Database) -> None:
    aws.create("rot/crash", database.rds_secret())
    enable_rotation(aws, "rot/crash")
    rotator = PostgresRotator(aws.client)
    token = "11111111-2222-3333-4444-555555555555"
    for step in ("createSecret", "setSecret"):
        rotator.run({"SecretId": "rot/crash", "ClientRequestToken": token, "Step": step, "LocalDriver": True})
    # crash: the database has the pending password, AWSCURRENT still the old one
    assert not logs_in(stage(aws, "rot/crash", "AWSCURRENT"))
    assert rotate_locally(aws.client, "rot/crash", rotator) == token
    assert logs_in(stage(aws, "rot/crash", "AWSCURRENT"))


def test_guard_refuses_unknown_token_and_disabled_rotation(aws: Aws, database: Database) -> None:
    aws.create("rot/guard", database.rds_secret())
    rotator = PostgresRotator(aws.client)
    event = {"SecretId": "rot/guard", "ClientRequestToken": "99999999-0000-0000-0000-000000000000", "Step": "setSecret"}
    with pytest.raises(RotationError, match="rotation is not enabled"):
        rotator.run(event)
    enable_rotation(aws, "rot/guard")
    with pytest.raises(RotationError, match="not a version"):
        rotator.run(event)


def test_alternating_users_rotate_three_times_and_tables_stay_usable(
    aws: Aws, migrated: Database, postgres: Any
) -> None:
    database = migrated  # tables owned by the migration user
    master = aws.create(
        "rot/master",
        json.dumps(
            {
                "engine": "postgres",
                "host": "127.0.0.1",
                "port": postgres.port,
                "dbname": "postgres",
                "username": "postgres",
                "password": postgres.superuser_password,
            }
        ),
    )
    aws.create("rot/alt", database.rds_secret(masterarn=master))
    enable_rotation(aws, "rot/alt")
    rotator = rotator_for(aws.client, "rot/alt", "alternating-users")
    users = []
    for i in range(3):
        rotate_locally(aws.client, "rot/alt", rotator)
        current, previous = stage(aws, "rot/alt", "AWSCURRENT"), stage(aws, "rot/alt", "AWSPREVIOUS")
        assert logs_in(current) and logs_in(previous)
        assert current["username"] != previous["username"]
        users.append(current["username"])
        for who in (current, previous):
            with psycopg.connect(
                host="127.0.0.1", port=who["port"], dbname=who["dbname"], user=who["username"], password=who["password"]
            ) as conn:
                conn.execute("INSERT INTO orgs (id, name) VALUES (gen_random_uuid(), %s)", (f"{who['username']}-{i}",))
                conn.execute(f"CREATE TABLE IF NOT EXISTS made_by_{who['username']} (x int)")
                conn.execute(f"INSERT INTO made_by_{who['username']} VALUES (1)")
    assert users == [f"{database.user}_clone", database.user, f"{database.user}_clone"]
    current = stage(aws, "rot/alt", "AWSCURRENT")
    with psycopg.connect(
        host="127.0.0.1",
        port=current["port"],
        dbname=current["dbname"],
        user=current["username"],
        password=current["password"],
    ) as conn:
        assert conn.execute("SELECT count(*) FROM orgs").fetchone() == (6,)
        for name in {database.user, f"{database.user}_clone"}:
            assert conn.execute(f"SELECT count(*) FROM made_by_{name}").fetchone()[0] >= 1  # type: ignore[index]


def test_alternating_user_name_limit(aws: Aws, database: Database) -> None:
    long = "u" * 60
    aws.create(
        "rot/long",
        json.dumps(
            {
                "engine": "postgres",
                "host": "127.0.0.1",
                "port": database.port,
                "dbname": database.name,
                "username": long,
                "password": "x" * 20,
                "masterarn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:m-AbCdEf",
            }
        ),
    )
    enable_rotation(aws, "rot/long")
    with pytest.raises(RotationError, match="too long"):
        rotate_locally(aws.client, "rot/long", PostgresRotator(aws.client))


def test_jwt_rotation(aws: Aws) -> None:
    aws.create("rot/jwt", "j" * 48)
    enable_rotation(aws, "rot/jwt")
    rotator = rotator_for(aws.client, "rot/jwt")
    assert isinstance(rotator, JwtRotator)
    values = ["j" * 48]
    for _ in range(3):
        rotate_locally(aws.client, "rot/jwt", rotator)
        current = aws.client.get_secret_value(SecretId="rot/jwt", VersionStage="AWSCURRENT")["SecretString"]
        previous = aws.client.get_secret_value(SecretId="rot/jwt", VersionStage="AWSPREVIOUS")["SecretString"]
        assert previous == values[-1] and current not in values and len(current.encode()) >= 32
        values.append(current)


@pytest.mark.slow
def test_cli_rotate_local_shows_steps_and_names_a_failed_step(cli: Cli, aws: Aws, database: Database) -> None:
    aws.create("rot/cli", database.rds_secret())
    enable_rotation(aws, "rot/cli")
    env = {**aws.env, "ENVIRONMENT": "development"}
    # No rotation function on an emulator: said, with the command that works, never switched to silently.
    no_function = cli("secrets", "rotate", "rot/cli", env=env)
    assert no_function.returncode == 3 and "fix: ecomind secrets rotate rot/cli --local" in no_function.stderr
    ok = cli("secrets", "rotate", "rot/cli", "--local", "--strategy", "single-user", env=env)
    assert ok.returncode == 0, ok.stderr
    assert [s for s in STEPS if f"{s} ..." in ok.stderr] == list(STEPS)
    assert logs_in(stage(aws, "rot/cli", "AWSCURRENT"))
    wrong = cli("secrets", "rotate", "rot/cli", "--local", "--strategy", "alternating-users", env=env)
    assert wrong.returncode == 1 and "single-user" in wrong.stderr
    database.set_password(f"{CANARY}-out-of-band")  # neither AWSCURRENT nor AWSPREVIOUS logs in now
    failed = cli("secrets", "rotate", "rot/cli", "--local", env=env)
    assert failed.returncode == 1 and "setSecret" in failed.stderr
    # The password was changed out of band: only the database's master user can set a new one,
    # whose URL the fix reads from a file: the command holds no password (shell history, ps).
    fix = failed.stderr.split("fix: ", 1)[1].strip()
    command = fix.split("   #", 1)[0]
    assert "--master-url-file" in command and "://" not in command and "ECOMIND_MASTER_URL" not in command, fix
    master = cli.cwd / "master-url"
    master.write_text(database.admin_dsn + "\n")
    master.chmod(0o600)
    shell = {**env, "PATH": f"{Path(ECOMIND).parent}:{os.environ['PATH']}", "MASTER_URL_FILE": str(master)}
    repaired = subprocess.run(["bash", "-c", fix], env=shell, cwd=cli.cwd, capture_output=True, text=True, timeout=120)
    assert repaired.returncode == 0, repaired.stderr
    database.set_password(f"{CANARY}-out-of-band-again")
    from_env = cli("secrets", "rotate", "rot/cli", "--local", env={**env, "ECOMIND_MASTER_URL": database.admin_dsn})
    assert from_env.returncode == 0, from_env.stderr  # the environment still gives it too
    assert logs_in(stage(aws, "rot/cli", "AWSCURRENT"))
    assert_clean(repaired, database.password)
    assert_clean(failed, database.password)
