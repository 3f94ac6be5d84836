"""provision, list, describe, run and doctor, as an operator runs them (moto, real PostgreSQL)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.secrets.environment import API_SECRET_ACTIONS, RDS_KEYS

from ..conftest import CANARY, ECOMIND, Aws, Cli, Database, assert_clean
from .conftest import run_fix

REPO = Path(__file__).resolve().parents[3]

JWT = "k" * 48


def provision(cli: Cli, aws: Aws, *extra: str) -> subprocess.CompletedProcess[str]:
    return cli("secrets", "provision", "-e", "staging", "--db-host", "db.internal", *extra, env=aws.env)


def values_of(aws: Aws) -> list[str]:
    return [aws.client.get_secret_value(SecretId=f"ecomind/staging/{n}")["SecretString"] for n in ("database", "jwt")]


@pytest.mark.slow
def test_provision_twice_changes_nothing_the_second_time(cli: Cli, aws: Aws) -> None:
    first = provision(cli, aws)
    assert first.returncode == 0, first.stderr
    assert "ecomind/staging/database: missing" in first.stdout and "CreateSecret" in first.stdout
    before = values_of(aws)
    second = provision(cli, aws)
    assert second.returncode == 0
    assert "ecomind/staging/database: exists" in second.stdout and "nothing to do" in second.stdout
    assert values_of(aws) == before
    database = json.loads(before[0])
    assert set(database) == set(RDS_KEYS)  # the one shape: CloudFormation writes the same keys
    meta = aws.client.describe_secret(SecretId="ecomind/staging/jwt")
    tags = {t["Key"]: t["Value"] for t in meta["Tags"]}
    assert tags == {"environment": "staging", "kind": "jwt", "owner": "ecomind-platform"}
    for result in (first, second):
        assert_clean(result, *before, database["password"])
    # The secrets resolve through the settings (the staging default references).
    check = cli("config", "check", "--json", env={**aws.env, "ENVIRONMENT": "staging"})
    assert check.returncode == 0, check.stdout + check.stderr
    rows = {r["variable"]: r for r in json.loads(check.stdout)["variables"]}
    assert rows["DATABASE_URL"]["value"] == "postgresql://ecomind_app:****@db.internal:5432/ecomind?sslmode=require"


def test_provision_changes_what_was_asked_and_keeps_the_password(cli: Cli, aws: Aws) -> None:
    assert provision(cli, aws).returncode == 0
    before = json.loads(values_of(aws)[0])
    args = [
        "secrets",
        "provision",
        "-e",
        "staging",
        "--db-host",
        "db2.internal",
        "--db-user",
        "app2",
        "--owner",
        "team-b",
    ]
    # Without --update: every difference is listed, nothing changes (a copied example must not repoint a secret).
    listed = cli(*args, env=aws.env)
    assert listed.returncode == 1 and "host: db.internal -> db2.internal" in listed.stdout
    assert json.loads(values_of(aws)[0]) == before
    fix = listed.stderr.split("fix: ", 1)[1].strip()
    assert fix.endswith("--update --region us-east-1")  # the region it ran in: the next shell may not have it
    moved = subprocess.run(
        ["bash", "-c", fix],
        env={**aws.env, "PATH": f"{Path(ECOMIND).parent}:{os.environ['PATH']}"},
        cwd=cli.cwd,
        capture_output=True,
        text=True,
    )
    assert moved.returncode == 0, moved.stderr
    assert "host: db.internal -> db2.internal" in moved.stdout and "username: ecomind_app -> app2" in moved.stdout
    assert "TagResource(owner=team-b)" in moved.stdout and "nothing to do" not in moved.stdout
    after = json.loads(values_of(aws)[0])
    assert (after["host"], after["username"], after["password"]) == ("db2.internal", "app2", before["password"])
    tags = aws.client.describe_secret(SecretId="ecomind/staging/jwt")["Tags"]
    assert {t["Key"]: t["Value"] for t in tags}["owner"] == "team-b"
    assert_clean(moved, before["password"])


@pytest.mark.slow
def test_rotation_on_existing_secrets_needs_no_db_host_and_one_function_per_secret(cli: Cli, aws: Aws) -> None:
    assert provision(cli, aws).returncode == 0
    plan = cli("secrets", "provision", "-e", "staging", "--enable-rotation", "--dry-run", "--json", env=aws.env)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    functions = {}
    for entry in json.loads(plan.stdout)["secrets"]:
        [rotate] = [c for c in entry["changes"] if c.startswith("RotateSecret")]
        functions[entry["name"]] = rotate.split("function ")[1].rstrip(")")
    assert functions == {
        "ecomind/staging/database": "arn:aws:lambda:us-east-1:123456789012:function:ecomind-staging-rotate-postgres",
        "ecomind/staging/jwt": "arn:aws:lambda:us-east-1:123456789012:function:ecomind-staging-rotate-jwt",
    }
    # Creating a missing database secret is the only thing that needs the endpoint.
    aws.client.delete_secret(SecretId="ecomind/staging/database", ForceDeleteWithoutRecovery=True)
    missing = cli("secrets", "provision", "-e", "staging", env=aws.env)
    assert missing.returncode == 2 and '--db-host "${DB_HOST:?' in missing.stderr
    fix = missing.stderr.split("fix: ", 1)[1].strip()
    assert run_fix(fix, {**aws.env, "DB_HOST": "db.internal"}, cli.cwd).returncode == 0  # the docs' DB_HOST


@pytest.mark.slow
def test_turning_rotation_on_keeps_the_value_the_operator_set(cli: Cli, aws: Aws) -> None:
    # moto rotates at once although asked not to (RotateImmediately=False): provision puts
    # AWSCURRENT back, so enabling a schedule never replaces a value.
    assert provision(cli, aws).returncode == 0
    chosen = "operator-chosen-jwt-" + "k" * 40
    assert cli("secrets", "set", "ecomind/staging/jwt", input=chosen + "\n", env=aws.env).returncode == 0
    set_version = aws.client.get_secret_value(SecretId="ecomind/staging/jwt")["VersionId"]
    on = cli("secrets", "provision", "-e", "staging", "--enable-rotation", "--rotation-driver", "local", env=aws.env)
    assert on.returncode == 0, on.stdout + on.stderr
    assert aws.client.get_secret_value(SecretId="ecomind/staging/jwt")["SecretString"] == chosen
    described = aws.client.describe_secret(SecretId="ecomind/staging/jwt")
    assert described["RotationEnabled"]
    # Tokens signed with the chosen value keep verifying: its version is AWSPREVIOUS (a JWT's
    # key id is the version id), not the version the endpoint made.
    [previous] = [v for v, staged in described["VersionIdsToStages"].items() if "AWSPREVIOUS" in staged]
    assert previous == set_version
    assert (
        aws.client.get_secret_value(SecretId="ecomind/staging/jwt", VersionStage="AWSPREVIOUS")["SecretString"]
        == chosen
    )
    assert_clean(on, chosen)


def test_provision_dry_run_makes_no_call(cli: Cli, aws: Aws) -> None:
    result = provision(cli, aws, "--dry-run")
    assert result.returncode == 0
    assert "would call CreateSecret(Name=ecomind/staging/database" in result.stdout
    assert aws.client.list_secrets()["SecretList"] == []


@pytest.mark.slow
def test_list_and_describe_show_no_value(cli: Cli, aws: Aws) -> None:
    assert provision(cli, aws).returncode == 0
    listed = cli("secrets", "list", "-e", "staging", "--json", env=aws.env)
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)["secrets"]}
    assert set(rows) == {"ecomind/staging/database", "ecomind/staging/jwt"}
    assert rows["ecomind/staging/jwt"]["rotation"] == "off" and "AWSCURRENT" in rows["ecomind/staging/jwt"]["stages"]
    described = cli("secrets", "describe", "ecomind/staging/database", env=aws.env)
    assert described.returncode == 0 and "environment" in described.stdout
    assert_clean(listed, *values_of(aws))
    assert_clean(described, *values_of(aws))
    missing = cli("secrets", "describe", "ecomind/staging/nope", env=aws.env)
    assert missing.returncode == 4 and "not found" in missing.stderr


@pytest.mark.slow
def test_describe_shows_the_replicas_and_their_status(cli: Cli, aws: Aws) -> None:
    """What the doctor's fix for a lagging replica sends the operator to: each region and its state."""
    assert provision(cli, aws, "--replica-region", "us-west-2").returncode == 0
    described = cli("secrets", "describe", "ecomind/staging/database", "--json", env=aws.env)
    assert described.returncode == 0, described.stderr
    info = json.loads(described.stdout)
    replicas = aws.client.describe_secret(SecretId="ecomind/staging/database")["ReplicationStatus"]
    assert [r["Region"] for r in replicas] == ["us-west-2"]
    assert info["primary_region"] == aws.client.meta.region_name
    assert info["replicas"] == [
        {
            "region": "us-west-2",
            "status": replicas[0]["Status"],
            "status_message": replicas[0].get("StatusMessage"),
            "last_accessed": None,
        }
    ]
    text = cli("secrets", "describe", "ecomind/staging/database", env=aws.env)
    assert text.returncode == 0, text.stderr
    line = next(line for line in text.stdout.splitlines() if line.startswith("replicas"))
    assert line.split() == ["replicas", "us-west-2", f"{replicas[0]['Status']}:", *replicas[0]["StatusMessage"].split()]
    assert_clean(described, *values_of(aws))
    assert_clean(text, *values_of(aws))
    # Not replicated: the primary region, and no replica.
    aws.create("ecomind/staging/extra", JWT)
    plain = cli("secrets", "describe", "ecomind/staging/extra", "--json", env=aws.env)
    assert json.loads(plain.stdout)["replicas"] == [] and json.loads(plain.stdout)["primary_region"] == "us-east-1"
    plain = cli("secrets", "describe", "ecomind/staging/extra", env=aws.env)
    assert "replicas           -" in plain.stdout.splitlines()


# -- run ---------------------------------------------------------------------------


@pytest.fixture
def run_env(aws: Aws) -> dict[str, str]:
    aws.create("run/jwt", CANARY)
    return {**aws.env, "DATABASE_URL": "postgresql://u:Run-pw-778@db/app", "JWT_SECRET": "aws-secretsmanager:run/jwt"}


def test_run_passes_the_exit_code(cli: Cli, run_env: dict[str, str]) -> None:
    result = cli("run", "--", "sh", "-c", "exit 7", env=run_env)
    assert result.returncode == 7
    missing = cli("run", "--", "no-such-command-xyz", env=run_env)
    assert missing.returncode == 127


def test_run_gives_the_child_the_values_and_prints_none(cli: Cli, run_env: dict[str, str]) -> None:
    result = cli("run", "--", "env", env=run_env)
    assert result.returncode == 0
    child = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert child["JWT_SECRET"] == CANARY  # the child sees the value...
    assert child["DATABASE_URL"] == "postgresql://u:Run-pw-778@db/app"
    assert CANARY not in result.stderr  # ...ecomind itself prints nothing
    only = cli("run", "--only", "DATABASE_URL", "--", "env", env=run_env)
    only_env = dict(line.split("=", 1) for line in only.stdout.splitlines() if "=" in line)
    assert only_env["JWT_SECRET"] == "aws-secretsmanager:run/jwt"  # not injected: left as it was


def test_run_forwards_sigterm_to_the_child(run_env: dict[str, str], tmp_path: Path) -> None:
    marker = tmp_path / "got-term"
    script = f"trap 'echo term > {marker}; exit 42' TERM; echo ready; while true; do sleep 0.1; done"
    env = {**os.environ, **run_env}
    proc = subprocess.Popen(
        [ECOMIND, "run", "--", "sh", "-c", script], env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 42
    assert marker.read_text().strip() == "term"


# -- doctor --------------------------------------------------------------------------


def doctor(cli: Cli, env: dict[str, str], *args: str) -> tuple[int, dict[str, dict[str, Any]], str]:
    result = cli("doctor", "--json", "--timeout", "2", *args, env=env)
    report = json.loads(result.stdout)
    assert report["ok"] == (result.returncode == 0)
    assert_clean(result, JWT)
    return result.returncode, {c["name"]: c for c in report["checks"]}, result.stdout


@pytest.fixture
def prod(aws: Aws, database: Database) -> dict[str, str]:
    """A production environment whose secrets exist and whose database answers (no SSL here)."""
    aws.create("ecomind/prod/database", database.rds_secret())
    aws.create("ecomind/prod/jwt", JWT)
    return {**aws.env, "ENVIRONMENT": "production"}


@pytest.mark.deploy
def test_doctor_denied_secret_prints_a_valid_least_privilege_policy(
    cli: Cli, iam_moto: tuple[Any, dict[str, str]]
) -> None:
    _, env = iam_moto
    code, checks, text = doctor(cli, {**env, "ENVIRONMENT": "production"})
    assert code == 1
    denied = checks["DATABASE_URL readable"]
    assert denied["status"] == "fail" and "denied, or the secret does not exist" in denied["detail"]
    policy = json.loads(denied["fix"][denied["fix"].index("\n{") :])
    assert policy["Statement"][0]["Action"] == list(API_SECRET_ACTIONS)  # as deploy/iam/ grants the API role
    assert policy["Statement"][0]["Resource"].endswith(":secret:ecomind/prod/database-??????")
    assert "SecretsManagerReadWrite" not in json.dumps(policy)
    assert CANARY not in text
    parliament = Path(__file__).resolve().parents[3] / ".venv-deploy" / "bin" / "parliament"
    checked = subprocess.run(
        [str(parliament), "--string", json.dumps(policy)], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    assert checked.returncode == 0 and checked.stdout.strip() == "", checked.stdout


def test_doctor_finds_the_secret_in_another_region(cli: Cli, aws: Aws) -> None:
    aws.create(
        "ecomind/prod/database",
        json.dumps({"connection_string": "postgresql://u:p4ss-word-1@h/db"}),
        region="eu-west-1",
    )
    aws.create("ecomind/prod/jwt", JWT)
    code, checks, _ = doctor(cli, {**aws.env, "ENVIRONMENT": "production"})
    assert code == 1
    check = checks["DATABASE_URL readable"]
    assert "exists in eu-west-1" in check["detail"] and "AWS_REGION=eu-west-1" in check["fix"]


def test_doctor_suggests_a_similar_name(cli: Cli, aws: Aws) -> None:
    aws.create("ecomind/prod/database", json.dumps({"connection_string": "postgresql://u:p4ss-word-1@h/db"}))
    aws.create("ecomind/prod/jwt", JWT)
    env = {**aws.env, "ENVIRONMENT": "production", "DATABASE_URL": "aws-secretsmanager:ecomind/prod/databse"}
    code, checks, _ = doctor(cli, env)
    assert code == 1
    assert "did you mean ecomind/prod/database" in checks["DATABASE_URL readable"]["fix"]


def test_doctor_unreachable_database_port_gives_the_security_group_hint(cli: Cli, aws: Aws) -> None:
    # A listener whose backlog is full drops new connections: a timeout, on loopback only.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        fillers.append(s)
    time.sleep(0.2)
    try:
        env = {
            **aws.env,
            "ENVIRONMENT": "staging",
            "DATABASE_URL": f"postgresql://u:p4ss-word-1@127.0.0.1:{port}/db",
            "JWT_SECRET": JWT,
        }
        code, checks, _ = doctor(cli, env)
    finally:
        for s in fillers:
            s.close()
        server.close()
    assert code == 1
    check = checks["database reachable"]
    assert check["status"] == "fail" and f"127.0.0.1:{port}" in check["detail"]
    assert "authorize-security-group-ingress" in check["fix"] and f"--port {port}" in check["fix"]


def test_doctor_wrong_password(cli: Cli, aws: Aws, database: Database) -> None:
    env = {**aws.env, "DATABASE_URL": database.url("not-the-password-1"), "JWT_SECRET": JWT}
    code, checks, text = doctor(cli, env)
    assert code == 1
    login = checks["database login"]
    assert "password authentication failed" in login["detail"] and "is not the role's" in login["fix"]
    assert "AWSCURRENT" not in login["fix"]  # development: no rotation advice
    assert database.password not in text


def test_doctor_passes_a_healthy_development_setup(cli: Cli, aws: Aws, database: Database) -> None:
    code, checks, _ = doctor(cli, {**aws.env, "DATABASE_URL": database.url(), "JWT_SECRET": JWT})
    assert code == 0, checks
    assert checks["database reachable"]["status"] == "ok"


def test_doctor_sslmode_disable_in_production(cli: Cli, prod: dict[str, str], database: Database) -> None:
    env = {**prod, "DATABASE_URL": database.url() + "?sslmode=disable"}
    code, checks, _ = doctor(cli, env)
    assert code == 1
    assert "sslmode=disable is refused in production" in checks["configuration: DATABASE_URL"]["detail"]


def test_doctor_example_value_in_production(cli: Cli, prod: dict[str, str], aws: Aws) -> None:
    env = {**prod, "JWT_SECRET": "local_dev_secret_change_in_production"}
    result = cli("doctor", "--json", env=env)
    assert result.returncode == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert "known example value" in checks["configuration: JWT_SECRET"]["detail"]
    assert_clean(result, "local_dev_secret_change_in_production")


def test_doctor_rotation_overdue(cli: Cli, prod: dict[str, str], aws: Aws) -> None:
    for name in ("ecomind/prod/database", "ecomind/prod/jwt"):
        aws.client.rotate_secret(SecretId=name, RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False)
    later = (datetime.now(UTC) + timedelta(days=45)).strftime("%Y-%m-%d")
    code, checks, _ = doctor(cli, prod, "--as-of", later)
    assert code == 1
    overdue = checks["JWT_SECRET rotation"]
    assert "overdue" in overdue["detail"] and "ecomind secrets rotate ecomind/prod/jwt" in overdue["fix"]
    _, today, _ = doctor(cli, prod)
    assert today["JWT_SECRET rotation"]["status"] == "ok"


def test_doctor_human_output_names_problem_and_fix(cli: Cli, prod: dict[str, str]) -> None:
    result = cli("doctor", env={**prod, "JWT_SECRET": "short"})
    assert result.returncode == 1
    assert "FAIL configuration: JWT_SECRET: is 5 bytes; production needs at least 32" in result.stdout
    assert "fix:" in result.stdout and "problem(s) found" in result.stderr


def test_provision_says_it_creates_the_replicas(cli: Cli, aws: Aws) -> None:
    made = provision(cli, aws, "--replica-region", "us-west-2")
    assert made.returncode == 0, made.stderr
    assert made.stdout.count("replicas in us-west-2)") == 2, made.stdout  # the database secret and the JWT's
    status = aws.client.describe_secret(SecretId="ecomind/staging/jwt")["ReplicationStatus"]
    assert [r["Region"] for r in status] == ["us-west-2"]


def test_provision_changes_an_existing_secret_as_the_docs_say(cli: Cli, aws: Aws) -> None:
    docs = (REPO / "docs" / "secrets.md").read_text()
    blocks = re.findall(r"<!-- runnable -->\n```bash\n(.*?)```", docs, re.S)
    documented = [b for b in blocks if "--db-port" in b and b.count("ecomind secrets provision") == 2]
    assert documented, "docs/secrets.md shows no re-run of provision that changes an existing secret"
    first, again = documented[0].strip().splitlines()
    shell = {**aws.env, "PATH": f"{Path(ECOMIND).parent}:{os.environ['PATH']}"}
    assert subprocess.run(["bash", "-c", first], env=shell, cwd=cli.cwd).returncode == 0
    before = json.loads(aws.client.get_secret_value(SecretId="ecomind/prod/database")["SecretString"])
    ran = subprocess.run(["bash", "-c", again], env=shell, cwd=cli.cwd, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    after = json.loads(aws.client.get_secret_value(SecretId="ecomind/prod/database")["SecretString"])
    assert after == {**before, "port": 6432}  # just that: the password kept
