"""What config show, config check, provision and set accept and refuse: passwords masked wherever a URL
holds them, deployed URLs that keep their own authority, references and prefixes named as written."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from app.secrets.environment import model

from ..conftest import CANARY, ECOMIND, Aws, Cli, Database, assert_clean
from ..support.services import free_port

JWT = "k" * 48


@pytest.mark.slow
def test_a_password_in_the_query_is_masked_like_one_in_the_authority(cli: Cli, aws: Aws) -> None:
    env = {
        "DATABASE_URL": f"postgresql://u@127.0.0.1:5432/db?password={CANARY}",
        "REDIS_URL": f"redis://127.0.0.1:6380/0?password={CANARY}",
        "JWT_SECRET": JWT,
    }
    for args in (["config", "show"], ["config", "check"], ["config", "check", "--json"], ["config", "show", "--json"]):
        result = cli(*args, env=env)
        assert_clean(result)
        assert "password=****" in result.stdout


@pytest.mark.parametrize(
    "query", ["host=/tmp/elsewhere", "hostaddr=10.0.0.9", "port=6543", "user=postgres", f"password={CANARY}"]
)
def test_deployed_urls_may_not_override_their_own_authority(cli: Cli, aws: Aws, query: str) -> None:
    env = {**aws.env, "ENVIRONMENT": "production", "JWT_SECRET": JWT}
    env["DATABASE_URL"] = f"postgresql://u:Pw-1234567@db.example:5432/app?{query}"
    result = cli("config", "check", env=env)
    assert result.returncode == 3 and "override the URL's own host, port or user" in result.stderr
    assert_clean(result)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"host": "db.internal/evil?host=127.0.0.1&x="}, "host is not a host name"),
        ({"port": 70000}, "port is not a TCP port"),
        ({"port": "abc"}, "port is not a TCP port"),
    ],
)
def test_secret_fields_cannot_smuggle_url_parts(cli: Cli, aws: Aws, fields: dict[str, Any], needle: str) -> None:
    secret = {"engine": "postgres", "host": "db", "port": 5432, "dbname": "d", "username": "u", "password": "p" * 12}
    aws.create("ecomind/staging/database", json.dumps({**secret, **fields}))
    aws.create("ecomind/staging/jwt", JWT)
    result = cli("config", "check", env={**aws.env, "ENVIRONMENT": "staging"})
    assert result.returncode == 3 and needle in result.stderr
    # The fix is a command: run as printed, with VALUE the right one, it repairs the secret.
    [fix] = [line.split("fix: ", 1)[1] for line in result.stderr.splitlines() if "fix: " in line]
    key = "host" if "host" in needle else "port"
    assert fix.startswith(f"printf '%s' \"$VALUE\" | ecomind secrets set ecomind/staging/database {key}"), fix
    value = {"host": "db.internal", "port": "5432"}[key]
    shell = {**aws.env, "PATH": f"{Path(ECOMIND).parent}:{os.environ['PATH']}", "VALUE": value}
    ran = subprocess.run(["sh", "-c", fix], env=shell, cwd=cli.cwd, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert cli("config", "check", env={**aws.env, "ENVIRONMENT": "staging"}).returncode == 0
    stored = json.loads(aws.client.get_secret_value(SecretId="ecomind/staging/database")["SecretString"])
    assert stored[key] == {"host": "db.internal", "port": 5432}[key]  # a port stays a number, as RDS writes it


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("postgresql://u:Pw-1234567@h:5432/db#frag", "fragment"),
        ("postgresql://u:Pw-1234567@h:5432/db?sslmode=bogus", "is not a libpq SSL mode"),
        ("postgresql://u:Pw-1234567@h:0/db", "port 0 is not a TCP port"),
    ],
)
def test_urls_libpq_would_refuse_are_refused_first(cli: Cli, url: str, needle: str) -> None:
    result = cli("config", "check", env={"DATABASE_URL": url, "JWT_SECRET": JWT})
    assert result.returncode == 3 and needle in result.stderr
    doctor = json.loads(cli("doctor", "--json", "--timeout", "1", env={"DATABASE_URL": url, "JWT_SECRET": JWT}).stdout)
    database = [c for c in doctor["checks"] if c["name"].startswith("database")]
    assert [c["status"] for c in database] == ["not_checked"]  # no host is tried that the URL does not name


@pytest.mark.slow
def test_redis_is_checked_by_config_check_and_by_the_doctor(cli: Cli, database: Database) -> None:
    bad = cli(
        "config", "check", env={"DATABASE_URL": database.url(), "JWT_SECRET": JWT, "REDIS_URL": "redis://h:abc/0"}
    )
    assert bad.returncode == 3 and "REDIS_URL" in bad.stderr
    env = {"DATABASE_URL": database.url(), "JWT_SECRET": JWT, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    doctor = cli("doctor", "--json", "--timeout", "1", env=env)
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert (
        doctor.returncode == 1
        and checks["redis"]["status"] == "fail"
        and "/ready answers 503" in checks["redis"]["detail"]
    )


def test_reference_names_are_never_mangled_by_redaction(cli: Cli, aws: Aws) -> None:
    aws.create("rv/short-jwt", "short")
    env = {**aws.env, "ENVIRONMENT": "staging", "DATABASE_URL": "postgresql://u:Pw-1234567@h/db"}
    env["JWT_SECRET"] = "aws-secretsmanager:rv/short-jwt"
    result = cli("config", "check", env=env)
    assert "aws-secretsmanager:rv/short-jwt" in result.stdout + result.stderr
    assert "[REDACTED]-jwt" not in result.stdout + result.stderr
    assert "fix: ecomind secrets rotate rv/short-jwt --local" in result.stderr  # a weak JWT in a secret: rotate it


def test_an_example_value_in_the_process_environment_says_to_unset_it(cli: Cli) -> None:
    env = {"DATABASE_URL": "postgresql://u:Pw-1234567@h/db", "JWT_SECRET": "changeme"}
    assert "fix: unset JWT_SECRET" in cli("config", "check", env=env).stdout


def test_malformed_reference_is_one_problem_not_two(cli: Cli) -> None:
    result = cli("config", "check", "--json", env={"DATABASE_URL": "aws-secretsmanager:", "JWT_SECRET": JWT})
    problems = [p for p in json.loads(result.stdout)["problems"] if p["variable"] == "DATABASE_URL"]
    assert len(problems) == 1 and "not a URL" not in problems[0]["message"]


def test_an_invalid_secrets_prefix_is_named(cli: Cli, aws: Aws) -> None:
    result = cli("config", "check", env={**aws.env, "ENVIRONMENT": "staging", "SECRETS_PREFIX": "team a"})
    assert result.returncode == 3 and "SECRETS_PREFIX" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_provision_refuses_another_environments_secrets(cli: Cli, aws: Aws) -> None:
    env = {**aws.env, "SECRETS_PREFIX": "team-a/staging"}
    assert cli("secrets", "provision", "-e", "staging", "--db-host", "db.internal", env=env).returncode == 0
    crossed = cli("secrets", "provision", "-e", "production", "--db-host", "db.prod", "--dry-run", env=env)
    assert (
        crossed.returncode == 3 and "belongs to staging" in crossed.stderr and "unset SECRETS_PREFIX" in crossed.stderr
    )
    assert cli("secrets", "provision", "-e", "staging", "--db-port", "70000", env=env).returncode == 2


@pytest.mark.slow
def test_set_refuses_what_the_app_would_refuse(cli: Cli, aws: Aws) -> None:
    assert cli("secrets", "provision", "-e", "staging", "--db-host", "db.internal", env=aws.env).returncode == 0
    before = aws.client.get_secret_value(SecretId="ecomind/staging/jwt")["SecretString"]
    short = cli("secrets", "set", "ecomind/staging/jwt", input="eight-ch\n", env=aws.env)
    assert short.returncode == 3 and "needs at least 32" in short.stderr
    port = cli("secrets", "set", "ecomind/staging/database", "port", input="abc\n", env=aws.env)
    assert port.returncode == 3 and "port is not a TCP port" in port.stderr
    assert "fix: printf '%s' \"$VALUE\" | ecomind secrets set ecomind/staging/database port" in port.stderr
    assert aws.client.get_secret_value(SecretId="ecomind/staging/jwt")["SecretString"] == before


@pytest.mark.slow
def test_init_and_config_name_a_missing_path_the_source_of_a_value_and_keep_two_backups(
    cli: Cli, tmp_path: Path
) -> None:
    (cli.cwd / ".env.example").write_text("JWT_SECRET=REPLACE_WITH_GENERATED_SECRET\n")
    missing_dir = cli("init", "--path", str(tmp_path / "nowhere" / ".env"))
    assert missing_dir.returncode == 2 and "is not a folder" in missing_dir.stderr
    missing_file = cli("config", "check", "--env-file", str(tmp_path / "nothing.env"))
    assert missing_file.returncode == 2 and "--env-file" in missing_file.stderr
    shown = json.loads(cli("config", "show", "--json", "--environment", "development").stdout)
    assert shown["ENVIRONMENT"]["source"] == "--environment"
    for _ in range(3):
        assert cli("init", "--force").returncode == 0
    assert {p.name for p in cli.cwd.glob(".env.bak*")} == {".env.bak", ".env.bak.1"}
    assert model("staging").secret_name("jwt") == "ecomind/staging/jwt"
