"""`ecomind secrets ...`: what each command says when it cannot do what was asked, and the
fix it prints, run as printed (moto's server, a shell that does not export AWS_REGION)."""

from __future__ import annotations

import json
import os
import pty
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.secrets.environment import API_SECRET_ACTIONS

from ..conftest import CANARY, ECOMIND, Aws, Cli, Database, assert_clean
from ..support.iam import admin_client, user_with
from ..support.services import MotoServer
from .conftest import run_fix

ELSEWHERE = "eu-west-1"  # not the tests' default region: a fix must carry its own


def shell_without_region(aws: Aws) -> dict[str, str]:
    """The shell the docs run commands in: AWS_REGION is passed inline, never exported."""
    return {k: v for k, v in aws.env.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}


def fix_of(stderr: str) -> str:
    return stderr.split("fix: ", 1)[1].strip()


@pytest.mark.slow
def test_rotating_a_secret_that_does_not_exist_says_what_is_known_and_how_to_create_it(cli: Cli, aws: Aws) -> None:
    shell = shell_without_region(aws)
    missing = cli("secrets", "rotate", "ecomind/prod/jwt", env={**shell, "AWS_REGION": ELSEWHERE})
    assert missing.returncode == 4, missing.stderr
    assert "it never existed there, or it was force-deleted" in missing.stderr
    fix = fix_of(missing.stderr)
    assert f"--region {ELSEWHERE}" in fix and "--db-host" in fix, fix  # production's database secret is missing too
    refused = run_fix(fix, shell, cli.cwd)
    assert refused.returncode != 0 and "set DB_HOST" in refused.stderr  # a placeholder, never run as a value
    ran = run_fix(fix, {**shell, "DB_HOST": "db.prod.internal"}, cli.cwd)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    described = cli("secrets", "describe", "ecomind/prod/jwt", "--region", ELSEWHERE, env=shell)
    assert described.returncode == 0 and "ecomind/prod/jwt" in described.stdout
    assert_clean(ran)


@pytest.mark.slow
def test_a_missing_secret_of_another_prefix_is_created_under_that_prefix(cli: Cli, aws: Aws) -> None:
    shell = shell_without_region(aws)
    missing = cli(
        "secrets",
        "describe",
        "team-a/staging/jwt",
        env={**shell, "AWS_REGION": ELSEWHERE, "SECRETS_PREFIX": "team-a/staging"},
    )
    fix = fix_of(missing.stderr)
    assert fix.startswith("ecomind secrets provision --environment staging"), fix
    ran = run_fix(fix, {**shell, "SECRETS_PREFIX": "team-a/staging", "DB_HOST": "db.internal"}, cli.cwd)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert cli("secrets", "describe", "team-a/staging/jwt", "--region", ELSEWHERE, env=shell).returncode == 0


def test_a_missing_secret_that_is_no_secret_of_the_model_gets_a_listing(cli: Cli, aws: Aws) -> None:
    missing = cli("secrets", "rotate", "elsewhere/thing", env=aws.env)
    assert missing.returncode == 4
    ran = run_fix(fix_of(missing.stderr), shell_without_region(aws), cli.cwd)
    assert ran.returncode == 0, ran.stderr


def test_rotate_asks_a_terminal_for_the_master_url_without_echoing_it(aws: Aws, database: Database) -> None:
    aws.create("rot/prompt", database.rds_secret())
    aws.client.rotate_secret(
        SecretId="rot/prompt", RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False
    )
    database.set_password(f"{CANARY}-changed-by-hand")  # neither stored password logs in
    env = {**aws.env, "ENVIRONMENT": "development", "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/")}
    pid, terminal = pty.fork()
    if pid == 0:  # the child: ecomind with a terminal of its own, as an operator's shell
        os.execve(ECOMIND, [ECOMIND, "secrets", "rotate", "rot/prompt", "--local"], env)
    seen = b""
    deadline = time.monotonic() + 60
    while b"master user's URL" not in seen:
        assert time.monotonic() < deadline, seen
        seen += os.read(terminal, 4096)
    os.write(terminal, database.admin_dsn.encode() + b"\n")
    while True:
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    _, status = os.waitpid(pid, 0)
    os.close(terminal)
    text = seen.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert "rotated rot/prompt" in text
    assert database.admin_dsn not in text and CANARY not in text  # not echoed, not printed


def test_rotate_refuses_a_master_url_file_it_cannot_read(cli: Cli, aws: Aws, database: Database) -> None:
    aws.create("rot/nofile", database.rds_secret())
    aws.client.rotate_secret(
        SecretId="rot/nofile", RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False
    )
    database.set_password(f"{CANARY}-changed-by-hand")
    env = {**aws.env, "ENVIRONMENT": "development"}
    missing = cli("secrets", "rotate", "rot/nofile", "--local", "--master-url-file", "nowhere", env=env)
    assert missing.returncode == 4 and "--master-url-file nowhere" in missing.stderr, missing.stderr
    assert "createSecret" not in missing.stderr  # refused before any step
    assert_clean(missing, database.password)


@pytest.mark.slow
def test_list_describe_and_the_doctor_agree_on_the_last_and_next_rotation(cli: Cli, aws: Aws) -> None:
    made = cli(
        "secrets", "provision", "-e", "staging", "--db-host", "db.internal", "--enable-rotation",
        "--rotation-driver", "local", env=aws.env,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    time.sleep(1.1)  # Secrets Manager's dates have seconds: the rotation below is later than the schedule
    before = datetime.now(UTC).replace(microsecond=0)
    rotated = cli("secrets", "rotate", "ecomind/staging/jwt", "--local", env=aws.env)
    assert rotated.returncode == 0, rotated.stderr
    listed = json.loads(cli("secrets", "list", "-e", "staging", "--json", env=aws.env).stdout)["secrets"]
    row = {r["name"]: r for r in listed}["ecomind/staging/jwt"]
    described = json.loads(cli("secrets", "describe", "ecomind/staging/jwt", "--json", env=aws.env).stdout)
    for shown in (row, described):
        last = datetime.fromisoformat(shown["last_rotated"])
        assert last >= before, shown  # the rotation driven here counts: it sets no LastRotatedDate
        assert datetime.fromisoformat(shown["next_rotation"]) == last + timedelta(days=90), shown
    env = {**aws.env, "ENVIRONMENT": "staging", "DATABASE_URL": "postgresql://u:Pw-1234567@127.0.0.1:1/db"}
    doctor = json.loads(cli("doctor", "--json", "--timeout", "1", env=env).stdout)
    check = {c["name"]: c for c in doctor["checks"]}["JWT_SECRET rotation"]
    last = datetime.fromisoformat(row["last_rotated"])
    assert check["status"] == "ok", check
    assert f"last {last:%Y-%m-%d}, next {last + timedelta(days=90):%Y-%m-%d}" in check["detail"], check


def test_set_checks_a_value_as_the_secrets_own_tags_say_whatever_the_shells_prefix(cli: Cli, aws: Aws) -> None:
    team = {**aws.env, "SECRETS_PREFIX": "team-a/staging"}
    made = cli("secrets", "provision", "-e", "staging", "--db-host", "db.internal", env=team)
    assert made.returncode == 0, made.stderr
    tags = {t["Key"]: t["Value"] for t in aws.client.describe_secret(SecretId="team-a/staging/jwt")["Tags"]}
    assert tags == {"environment": "staging", "kind": "jwt", "owner": "ecomind-platform"}
    before = aws.client.get_secret_value(SecretId="team-a/staging/jwt")["SecretString"]
    short = cli("secrets", "set", "team-a/staging/jwt", input="eight-ch\n", env=aws.env)  # no SECRETS_PREFIX here
    assert short.returncode == 3 and "needs at least 32" in short.stderr, short.stdout + short.stderr
    assert aws.client.get_secret_value(SecretId="team-a/staging/jwt")["SecretString"] == before
    # A name that says nothing: the tags alone decide.
    aws.client.create_secret(
        Name="platform/signing-key",
        SecretString="s" * 40,
        Tags=[{"Key": "environment", "Value": "production"}, {"Key": "kind", "Value": "jwt"}],
    )
    refused = cli("secrets", "set", "platform/signing-key", input="short\n", env=aws.env)
    assert refused.returncode == 3 and "production needs at least 32" in refused.stderr, refused.stderr


@pytest.mark.slow
def test_a_refused_database_value_is_said_once_with_a_fix_that_fits_a_database_secret(cli: Cli, aws: Aws) -> None:
    assert cli("secrets", "provision", "-e", "staging", "--db-host", "db.internal", env=aws.env).returncode == 0
    before = json.loads(aws.client.get_secret_value(SecretId="ecomind/staging/database")["SecretString"])
    refused = cli("secrets", "set", "ecomind/staging/database", input="not a url\n", env=aws.env)
    assert refused.returncode == 3, refused.stderr
    assert "as DATABASE_URL in staging: the value is not a URL" in refused.stderr, refused.stderr
    assert "the value the value" not in refused.stderr
    fix = fix_of(refused.stderr)
    assert "a generated value" not in fix and "secrets rotate ecomind/staging/database" in fix, fix
    ran = run_fix(fix, {**shell_without_region(aws), "VALUE": "db2.internal"}, cli.cwd)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    after = json.loads(aws.client.get_secret_value(SecretId="ecomind/staging/database")["SecretString"])
    assert after == {**before, "host": "db2.internal"}  # one field changed, the RDS shape and password kept


def test_a_refused_signing_key_is_replaced_by_a_generated_one_as_printed(cli: Cli, aws: Aws) -> None:
    assert cli("secrets", "provision", "-e", "staging", "--db-host", "db.internal", env=aws.env).returncode == 0
    refused = cli("secrets", "set", "ecomind/staging/jwt", input="eight-ch\n", env=aws.env)
    assert refused.returncode == 3 and "as JWT_SECRET in staging: the value is 8 bytes" in refused.stderr
    ran = run_fix(fix_of(refused.stderr), shell_without_region(aws), cli.cwd)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    value = aws.client.get_secret_value(SecretId="ecomind/staging/jwt")["SecretString"]
    assert len(value.encode()) >= 32 and value not in ran.stdout + ran.stderr


AWS_CLI_BIN = Path(__file__).resolve().parents[3] / ".venv-deploy" / "bin"


def current_twice(aws: Aws, name: str) -> tuple[str, str]:
    """Stock moto after a stage moved by hand, then a value put: AWSCURRENT on two versions (AWS
    never, nor the project's server)."""
    first = aws.client.create_secret(Name=name, SecretString="a" * 48)["VersionId"]
    moved = aws.client.put_secret_value(SecretId=name, SecretString="b" * 48, VersionStages=["AWSPENDING"])["VersionId"]
    aws.client.update_secret_version_stage(
        SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=moved, RemoveFromVersionId=first
    )
    put = aws.client.put_secret_value(SecretId=name, SecretString="c" * 48)["VersionId"]
    stages = aws.client.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert "AWSCURRENT" in stages[moved] and "AWSCURRENT" in stages[put], stages
    return moved, put


@pytest.mark.deploy
def test_history_flags_a_stage_on_two_versions_with_a_fix_that_runs(cli: Cli, stock_aws: Aws) -> None:
    aws = stock_aws
    current_twice(aws, "ecomind/staging/jwt")
    shown = cli("secrets", "history", "ecomind/staging/jwt", env=aws.env)
    assert shown.returncode == 0, shown.stderr
    assert "impossible: AWSCURRENT is on 2 versions" in shown.stderr, shown.stderr
    listed = json.loads(cli("secrets", "history", "ecomind/staging/jwt", "--json", env=aws.env).stdout)
    [problem] = listed["problems"]
    assert problem["message"].startswith("AWSCURRENT is on 2 versions") and problem["fix"] in shown.stderr
    shell = {**shell_without_region(aws), "PATH": f"{AWS_CLI_BIN}:{os.environ['PATH']}"}
    ran = run_fix(fix_of(shown.stderr), shell, cli.cwd)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    again = cli("secrets", "history", "ecomind/staging/jwt", env=aws.env)
    assert "impossible" not in again.stderr, again.stderr


@pytest.mark.slow
def test_a_short_signing_key_on_an_emulator_is_replaced_by_a_local_rotation_as_printed(cli: Cli, aws: Aws) -> None:
    made = cli(
        "secrets", "provision", "-e", "staging", "--db-host", "db.internal", "--enable-rotation",
        "--rotation-driver", "local", env=aws.env,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    before = aws.client.get_secret_value(SecretId="ecomind/staging/jwt")["VersionId"]
    refused = cli("secrets", "set", "ecomind/staging/jwt", input="eight-ch\n", env=aws.env)
    assert refused.returncode == 3 and "needs at least 32" in refused.stderr
    fix = fix_of(refused.stderr)
    assert fix.startswith("ecomind secrets rotate ecomind/staging/jwt --local"), fix  # AWS_ENDPOINT_URL: an emulator
    ran = run_fix(fix, shell_without_region(aws), cli.cwd)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    after = aws.client.get_secret_value(SecretId="ecomind/staging/jwt", VersionStage="AWSCURRENT")
    assert after["VersionId"] != before and len(after["SecretString"].encode()) >= 32


# -- a missing secret on an emulator is not the emulator's failure ---------------------------


def test_the_history_of_a_missing_secret_is_not_found_with_the_command_that_creates_it(cli: Cli, aws: Aws) -> None:
    shell = shell_without_region(aws)
    missing = cli("secrets", "history", "ecomind/staging/jwt", env=aws.env)
    assert missing.returncode == 4, missing.stderr
    assert "not found in us-east-1" in missing.stderr and "emulator failed" not in missing.stderr
    ran = run_fix(fix_of(missing.stderr), {**shell, "DB_HOST": "db.internal"}, cli.cwd)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert cli("secrets", "history", "ecomind/staging/jwt", env=aws.env).returncode == 0


@pytest.mark.slow
def test_the_history_asked_in_the_wrong_region_names_the_region_that_holds_the_secret(cli: Cli, aws: Aws) -> None:
    aws.create("ecomind/staging/jwt", "k" * 48, region=ELSEWHERE)
    shell = shell_without_region(aws)
    for asked in (["--region", "us-west-2"], []):  # the option, or AWS_REGION's region
        missing = cli("secrets", "history", "ecomind/staging/jwt", *asked, env=aws.env)
        assert missing.returncode == 4, missing.stderr
        assert f"exists in {ELSEWHERE}" in missing.stderr, missing.stderr
        fix = fix_of(missing.stderr)
        assert fix.startswith(f"ecomind secrets history ecomind/staging/jwt --region {ELSEWHERE}"), fix
        ran = run_fix(fix, shell, cli.cwd)
        assert ran.returncode == 0 and "AWSCURRENT" in ran.stdout, ran.stdout + ran.stderr


def test_a_region_no_aws_partition_has_is_a_configuration_error_on_an_emulator(cli: Cli, aws: Aws) -> None:
    aws.create("ecomind/staging/jwt", "k" * 48)
    shell = shell_without_region(aws)
    for command in ("history", "describe"):
        unknown = cli("secrets", command, "ecomind/staging/jwt", "--region", "eu-west-99", env=aws.env)
        assert unknown.returncode == 3, unknown.stderr
        assert "eu-west-99 is not an AWS region" in unknown.stderr and "emulator failed" not in unknown.stderr
        fix = fix_of(unknown.stderr)
        assert "eu-west-99" not in fix, fix
        ran = run_fix(fix, {**shell, "REGION": "us-east-1"}, cli.cwd)
        assert ran.returncode == 0, ran.stdout + ran.stderr


def test_a_missing_secret_on_stock_moto_which_answers_500_is_not_found_too(cli: Cli, stock_aws: Aws) -> None:
    missing = cli("secrets", "history", "ecomind/staging/jwt", env=stock_aws.env)
    assert missing.returncode == 4, missing.stderr
    assert "not found in us-east-1" in missing.stderr and "emulator failed" not in missing.stderr


# -- rotating on an emulator --------------------------------------------------------------


def stub_rotation_functions(aws: Aws, environment: str = "staging") -> None:
    """The guide's rotation functions, created as on AWS: on an emulator they answer without running."""
    import io
    import zipfile

    import boto3

    from app.secrets.environment import model

    m = model(environment)
    kw = {"region_name": "us-east-1", "endpoint_url": aws.url}
    trust = {"Version": "2012-10-17", "Statement": []}
    role = boto3.client("iam", **kw).create_role(
        RoleName=m.role_name("rotation"), AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as zf:
        zf.writestr("stub.py", "def handler(event, context):\n    return None\n")
    functions = boto3.client("lambda", **kw)
    for spec in m.secrets:
        functions.create_function(
            FunctionName=m.function_name(spec.key),
            Runtime="python3.12",
            Role=role,
            Handler="stub.handler",
            Code={"ZipFile": code.getvalue()},
        )


@pytest.mark.slow
def test_rotating_on_an_emulator_without_local_is_refused_with_the_local_rotation_that_runs(cli: Cli, aws: Aws) -> None:
    stub_rotation_functions(aws)
    made = cli(
        "secrets", "provision", "-e", "staging", "--db-host", "db.internal", "--enable-rotation", env=aws.env
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    before = aws.client.get_secret_value(SecretId="ecomind/staging/jwt", VersionStage="AWSCURRENT")
    refused = cli("secrets", "rotate", "ecomind/staging/jwt", "--region", "us-east-1", env=aws.env)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "an emulator runs no rotation function" in refused.stderr and "started" not in refused.stdout
    fix = fix_of(refused.stderr)
    assert fix.startswith("ecomind secrets rotate ecomind/staging/jwt --region us-east-1 --local"), fix
    ran = run_fix(fix, shell_without_region(aws), cli.cwd)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    after = aws.client.get_secret_value(SecretId="ecomind/staging/jwt", VersionStage="AWSCURRENT")
    assert after["VersionId"] != before["VersionId"] and after["SecretString"] != before["SecretString"]
    stages = aws.client.describe_secret(SecretId="ecomind/staging/jwt")["VersionIdsToStages"]
    assert sum("AWSCURRENT" in s for s in stages.values()) == 1, stages
    assert_clean(ran, before["SecretString"], after["SecretString"])


@pytest.mark.slow
def test_a_value_set_after_a_local_rotation_is_the_one_every_reader_gets(cli: Cli, aws: Aws) -> None:
    made = cli(
        "secrets", "provision", "-e", "staging", "--db-host", "db.internal", "--enable-rotation",
        "--rotation-driver", "local", env=aws.env,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    rotated = cli("secrets", "rotate", "ecomind/staging/jwt", "--local", env=aws.env)
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    new = "n" * 48
    stored = cli("secrets", "set", "ecomind/staging/jwt", "--json", input=new, env=aws.env)
    assert stored.returncode == 0, stored.stdout + stored.stderr
    version = json.loads(stored.stdout)["version"]
    got = cli("secrets", "get", "ecomind/staging/jwt", env=aws.env)
    assert got.returncode == 0 and got.stdout == new + "\n", "secrets get reads another version than the one set"
    listed = json.loads(cli("secrets", "history", "ecomind/staging/jwt", "--json", env=aws.env).stdout)
    assert listed["problems"] == [], listed["problems"]
    assert [v["version"] for v in listed["versions"] if "AWSCURRENT" in v["stages"]] == [version]
    env = {**aws.env, "ENVIRONMENT": "staging", "DATABASE_URL": "postgresql://u:Pw-1234567@127.0.0.1:1/db"}
    report = json.loads(cli("doctor", "--json", "--timeout", "1", env=env).stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["JWT_SECRET stages"]["status"] == "ok", checks["JWT_SECRET stages"]
    assert f"version {version}" in checks["JWT_SECRET readable"]["detail"], checks["JWT_SECRET readable"]


@pytest.mark.deploy
def test_the_stage_repair_keeps_the_newest_version_that_holds_a_value(cli: Cli, stock_aws: Aws) -> None:
    aws, name = stock_aws, "ecomind/staging/jwt"
    shell = {**shell_without_region(aws), "PATH": f"{AWS_CLI_BIN}:{os.environ['PATH']}"}
    made = cli(
        "secrets", "provision", "-e", "staging", "--db-host", "db.internal", "--enable-rotation",
        "--rotation-driver", "local", env=aws.env,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    assert cli("secrets", "rotate", name, "--local", env=aws.env).returncode == 0
    new = "n" * 48
    stored = json.loads(cli("secrets", "set", name, "--json", input=new, env=aws.env).stdout)
    # Stock moto: the rotated version keeps AWSCURRENT beside the one just set, and a read of
    # AWSCURRENT gets the rotated one (the older).
    shown = cli("secrets", "history", name, env=aws.env)
    assert "impossible: AWSCURRENT is on 2 versions" in shown.stderr, shown.stderr
    assert f"keeps AWSCURRENT on {stored['version']}" in shown.stderr, shown.stderr
    ran = run_fix(fix_of(shown.stderr), shell, cli.cwd)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    got = cli("secrets", "get", name, env=aws.env)
    assert got.stdout == new + "\n", "the repair left AWSCURRENT on another version than the one set last"
    # A rotation stub staged AWSCURRENT on a version with no value, newer than the one that has it.
    pending = aws.client.put_secret_value(SecretId=name, SecretString="p" * 48, VersionStages=["AWSPENDING"])
    aws.client.update_secret_version_stage(
        SecretId=name,
        VersionStage="AWSCURRENT",
        MoveToVersionId=pending["VersionId"],
        RemoveFromVersionId=stored["version"],
    )
    aws.client.update_secret_version_stage(
        SecretId=name, VersionStage="AWSPENDING", RemoveFromVersionId=pending["VersionId"]
    )
    aws.client.rotate_secret(SecretId=name)  # no function: moto stages AWSCURRENT on a version with no value
    shown = cli("secrets", "history", name, env=aws.env)
    assert f"keeps AWSCURRENT on {pending['VersionId']}" in shown.stderr, shown.stderr


# -- writes go to the primary region ------------------------------------------------------


def replicated_production(cli: Cli, env: dict[str, str]) -> None:
    made = cli(
        "secrets", "provision", "-e", "production", "--db-host", "db.internal", "--enable-rotation",
        "--rotation-driver", "local", "--replica-region", "us-west-2", env={**env, "AWS_REGION": "us-east-1"},
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr


@pytest.mark.slow
def test_writes_asked_in_a_replica_region_go_to_the_primary_with_a_fix_that_runs(cli: Cli, aws: Aws) -> None:
    replicated_production(cli, aws.env)
    in_replica = {**aws.env, "AWS_REGION": "us-west-2"}
    shell = shell_without_region(aws)
    rotated = cli("secrets", "rotate", "ecomind/prod/jwt", "--local", env=in_replica)
    assert rotated.returncode == 3, rotated.stdout + rotated.stderr
    assert "is a replica of the secret in us-east-1" in rotated.stderr, rotated.stderr
    fix = fix_of(rotated.stderr)
    assert fix.startswith("ecomind secrets rotate ecomind/prod/jwt --local --region us-east-1"), fix
    ran = run_fix(fix, shell, cli.cwd)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    stored = cli("secrets", "set", "ecomind/prod/jwt", "--region", "us-west-2", input="s" * 48, env=aws.env)
    assert stored.returncode == 3 and "is a replica" in stored.stderr, stored.stdout + stored.stderr
    fix = fix_of(stored.stderr)
    assert fix.startswith("printf '%s' \"$VALUE\" | ecomind secrets set ecomind/prod/jwt --region us-east-1"), fix
    ran = run_fix(fix, {**shell, "VALUE": "v" * 48}, cli.cwd)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert aws.client.get_secret_value(SecretId="ecomind/prod/jwt")["SecretString"] == "v" * 48


def test_the_rotation_role_asked_in_a_replica_region_is_sent_to_the_primary(
    cli: Cli, iam: tuple[MotoServer, dict[str, str]]
) -> None:
    replicated_production(cli, iam[1])
    # deploy/iam/rotation-lambda-role.policy.json: the primary region only.
    rotation = user_with(
        iam,
        "prod-rotation",
        [
            {
                "Effect": "Allow",
                "Action": [
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:GetSecretValue",
                    "secretsmanager:PutSecretValue",
                    "secretsmanager:UpdateSecretVersionStage",
                ],
                "Resource": "arn:aws:secretsmanager:us-east-1:*:secret:ecomind/prod/jwt-??????",
            },
            {"Effect": "Allow", "Action": "secretsmanager:GetRandomPassword", "Resource": "*"},
        ],
    )
    refused = cli("secrets", "rotate", "ecomind/prod/jwt", "--local", env={**rotation, "AWS_REGION": "us-west-2"})
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "its primary region is us-east-1" in refused.stderr and "grant" not in refused.stderr, refused.stderr
    shell = {k: v for k, v in rotation.items() if k != "AWS_REGION"}
    ran = run_fix(fix_of(refused.stderr), shell, cli.cwd)
    assert ran.returncode == 0, ran.stdout + ran.stderr


# -- who may run a command -----------------------------------------------------------------


@pytest.mark.slow
def test_a_command_the_api_role_may_not_run_names_who_may_and_widens_no_role(
    cli: Cli, iam: tuple[MotoServer, dict[str, str]]
) -> None:
    admin = iam[1]
    sm = admin_client(iam)
    existing = {s["Name"] for s in sm.list_secrets()["SecretList"]}  # the module's server, shared
    for name in {"ecomind/staging/database", "ecomind/staging/jwt"} - existing:
        sm.create_secret(Name=name, SecretString="k" * 48)
    # deploy/iam/api-task-role.policy.json: reads, describes and lists versions of its secrets.
    api = user_with(
        iam,
        "staging-api",
        [
            {
                "Effect": "Allow",
                "Action": list(API_SECRET_ACTIONS),
                "Resource": "arn:aws:secretsmanager:*:*:secret:ecomind/staging/*",
            },
            {"Effect": "Allow", "Action": "secretsmanager:BatchGetSecretValue", "Resource": "*"},
        ],
    )
    as_api = {**api, "ENVIRONMENT": "staging"}
    operator = {k: v for k, v in admin.items() if k != "AWS_REGION"}
    sm.delete_secret(SecretId="ecomind/staging/database", RecoveryWindowInDays=7)
    for command, stdin in (
        (["secrets", "restore", "ecomind/staging/database"], None),
        (["secrets", "set", "ecomind/staging/jwt"], "v" * 48),
        (["secrets", "list", "-e", "staging"], None),
    ):
        refused = cli(*command, input=stdin, env=as_api)
        assert refused.returncode == 5, refused.stdout + refused.stderr
        assert "grant" not in refused.stderr, refused.stderr
        fix = fix_of(refused.stderr)
        assert fix.endswith(
            "as the operator who provisioned the secrets; ecomind-staging-api and the other task roles may not"
        ), fix
        ran = run_fix(fix, {**operator, "VALUE": "w" * 48}, cli.cwd)
        assert ran.returncode == 0, ran.stdout + ran.stderr


@pytest.mark.slow
def test_a_database_secret_refuses_its_password_an_unknown_key_and_a_whole_url_with_fixes_that_run(
    cli: Cli, aws: Aws, database: Database
) -> None:
    name = "ecomind/staging/database"
    aws.client.create_secret(
        Name=name,
        SecretString=database.rds_secret(),
        Tags=[{"Key": "environment", "Value": "staging"}, {"Key": "kind", "Value": "database"}],
    )
    made = cli("secrets", "provision", "-e", "staging", "--enable-rotation", "--rotation-driver", "local", env=aws.env)
    assert made.returncode == 0, made.stdout + made.stderr
    before = json.loads(aws.client.get_secret_value(SecretId=name)["SecretString"])
    shell = shell_without_region(aws)

    password = cli("secrets", "set", name, "password", input=f"{CANARY}-typed", env=aws.env)
    assert password.returncode == 2 and "changes only by a rotation" in password.stderr, password.stderr
    fix = fix_of(password.stderr)
    assert fix.startswith(f"ecomind secrets rotate {name} --local --region us-east-1"), fix
    # The tests' PostgreSQL has no SSL: the rotation connects by development's rules.
    ran = run_fix(fix, {**shell, "ENVIRONMENT": "development"}, cli.cwd)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    rotated = json.loads(aws.client.get_secret_value(SecretId=name)["SecretString"])
    assert rotated["password"] not in (before["password"], f"{CANARY}-typed")

    unknown = cli("secrets", "set", name, "nosuchkey", input="x", env=aws.env)
    assert unknown.returncode == 2, unknown.stderr
    assert "has no key nosuchkey: its keys are engine, host, port, dbname, username, masterarn" in unknown.stderr

    url = cli("secrets", "set", name, input=database.url(), env=aws.env)
    assert url.returncode == 3 and "a whole value would replace them all" in url.stderr, url.stderr
    ran = run_fix(fix_of(url.stderr), {**shell, "VALUE": "127.0.0.1"}, cli.cwd)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    after = json.loads(aws.client.get_secret_value(SecretId=name)["SecretString"])
    assert after == rotated  # nothing refused was stored; the fix set the host it already had
    for result in (password, unknown, url, ran):
        assert_clean(result, before["password"], rotated["password"], database.password)
