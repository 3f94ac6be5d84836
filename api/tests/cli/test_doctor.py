"""`ecomind doctor`: what it diagnoses and the fix it prints, run as printed (moto's server;
IAM enforced where a role or a key is refused)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from app.data.local import LocalPostgres, ensure_role_and_database
from app.secrets.environment import model

from ..conftest import CANARY, REGION, Aws, Cli, assert_clean
from ..support.awsproxy import AwsProxy
from ..support.iam import IamMoto, admin_client, start_iam_moto, user_with
from ..support.services import MotoServer, free_port
from .conftest import run_fix

REPO = Path(__file__).resolve().parents[3]

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


@pytest.mark.slow
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


@pytest.mark.slow
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


# -- every printed fix runs as printed: in its region, as the role it names ----------------

ELSEWHERE = "eu-west-1"  # not the region of the tests' shell (us-east-1): a fix must carry its own


_ROLE_USERS: dict[tuple[int, str], dict[str, str]] = {}


def role_user(iam: tuple[MotoServer, dict[str, str]], role: str, policy: str, env: str = "staging") -> dict[str, str]:
    """A user named as the model's role, holding exactly that role's policy of deploy/iam/ (in ELSEWHERE);
    made once per IAM server."""
    made = _ROLE_USERS.get((iam[0].port, role))
    if made is not None:
        return made
    made = user_with(iam, model(env).role_name(role), rendered_statements(policy, env))
    _ROLE_USERS[(iam[0].port, role)] = made
    return made


def rendered_statements(policy: str, env: str = "staging") -> list[dict[str, Any]]:
    """The statements of a policy of deploy/iam/, rendered for ``env`` in ELSEWHERE."""
    rendered = subprocess.run(
        [sys.executable, str(REPO / "deploy/render.py"), env, str(REPO / policy), "--set", f"AWS_REGION={ELSEWHERE}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return list(json.loads(rendered)["Statement"])


def assumed_role(
    iam: tuple[MotoServer, dict[str, str]], role: str, policy: str, env: str = "staging"
) -> dict[str, str]:
    """Credentials of the model's role itself (STS answers assumed-role/NAME/...), holding exactly
    its policy of deploy/iam/, assumed by the administrator as docs/deployment.md's rehearsal does."""
    server, admin = iam
    kw = {
        "region_name": REGION,
        "endpoint_url": server.url,
        "aws_access_key_id": admin["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": admin["AWS_SECRET_ACCESS_KEY"],
    }
    client = boto3.client("iam", **kw)
    name = model(env).role_name(role)
    operator = client.get_user(UserName="admin")["User"]["Arn"]
    trust = {"Effect": "Allow", "Principal": {"AWS": operator}, "Action": "sts:AssumeRole"}
    try:
        arn = client.get_role(RoleName=name)["Role"]["Arn"]
    except client.exceptions.NoSuchEntityException:
        document = json.dumps({"Version": "2012-10-17", "Statement": [trust]})
        arn = client.create_role(RoleName=name, AssumeRolePolicyDocument=document)["Role"]["Arn"]
        statements = {"Version": "2012-10-17", "Statement": rendered_statements(policy, env)}
        client.put_role_policy(RoleName=name, PolicyName="ecomind", PolicyDocument=json.dumps(statements))
    creds = boto3.client("sts", **kw).assume_role(RoleArn=arn, RoleSessionName="doctor")["Credentials"]
    return {
        **admin,
        "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
        "AWS_SESSION_TOKEN": creds["SessionToken"],
    }


def shell_without_region(env: dict[str, str]) -> dict[str, str]:
    """The shell the docs run fixes in: AWS_REGION was passed inline to the doctor, not exported."""
    return {k: v for k, v in env.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}


@pytest.fixture
def staging_elsewhere(iam: tuple[MotoServer, dict[str, str]]) -> dict[str, str]:
    """Staging's JWT secret in ELSEWHERE; the database from the environment (it does not answer)."""
    sm = admin_client(iam, ELSEWHERE)
    try:
        sm.create_secret(Name="ecomind/staging/jwt", SecretString=JWT)
    except sm.exceptions.ResourceExistsException:
        sm.restore_secret(SecretId="ecomind/staging/jwt")  # a test before may have left it deleted
    return {"ENVIRONMENT": "staging", "AWS_REGION": ELSEWHERE, "DATABASE_URL": DB}


@pytest.mark.slow
def test_the_restore_fix_runs_in_the_secrets_region_as_the_operator_it_names(
    iam: tuple[MotoServer, dict[str, str]], cli: Cli, staging_elsewhere: dict[str, str]
) -> None:
    sm = admin_client(iam, ELSEWHERE)
    sm.delete_secret(SecretId="ecomind/staging/jwt", RecoveryWindowInDays=7)
    api = role_user(iam, "api", "deploy/iam/api-task-role.policy.json")
    _, checks, _ = doctor(cli, {**api, **staging_elsewhere})
    readable = checks["JWT_SECRET readable"]
    assert "scheduled for deletion on" in readable["detail"]
    fix = readable["fix"]
    assert f"--region {ELSEWHERE}" in fix and "us-east-1" not in fix
    assert "as the operator" in fix and "ecomind-staging-api" in fix, fix  # the role that may not
    as_api = run_fix(fix, shell_without_region(api), cli.cwd)
    assert as_api.returncode == 5, as_api.stderr  # the API role may not restore: the fix said so
    as_operator = run_fix(fix, shell_without_region(iam[1]), cli.cwd)
    assert as_operator.returncode == 0 and "restored" in as_operator.stdout, as_operator.stderr
    assert "DeletedDate" not in sm.describe_secret(SecretId="ecomind/staging/jwt")


@pytest.mark.slow
def test_a_force_deleted_secret_denied_to_the_api_role_may_be_missing_and_the_operators_describe_tells(
    iam: tuple[MotoServer, dict[str, str]], cli: Cli, staging_elsewhere: dict[str, str]
) -> None:
    sm = admin_client(iam, ELSEWHERE)
    sm.delete_secret(SecretId="ecomind/staging/jwt", ForceDeleteWithoutRecovery=True)
    api = role_user(iam, "api", "deploy/iam/api-task-role.policy.json")
    _, checks, _ = doctor(cli, {**api, **staging_elsewhere})
    readable = checks["JWT_SECRET readable"]
    assert readable["status"] == "fail", readable
    assert "denied, or the secret does not exist" in readable["detail"], readable
    assert "AccessDenied for a missing secret under a suffix-scoped grant" in readable["detail"]
    describe, _, policy = readable["fix"].partition("\n")
    assert describe.startswith("ecomind secrets describe ecomind/staging/jwt") and "as the operator" in describe
    assert f"--region {ELSEWHERE}" in describe and '"Statement"' in policy, readable["fix"]
    as_operator = run_fix(describe, shell_without_region(iam[1]), cli.cwd)
    assert as_operator.returncode == 4 and "not found" in as_operator.stderr, as_operator.stderr


@pytest.mark.slow
def test_the_resume_fix_runs_in_the_secrets_region_as_the_rotation_role_it_names(
    iam: tuple[MotoServer, dict[str, str]], cli: Cli, staging_elsewhere: dict[str, str]
) -> None:
    sm = admin_client(iam, ELSEWHERE)
    sm.rotate_secret(
        SecretId="ecomind/staging/jwt", RotationRules={"AutomaticallyAfterDays": 90}, RotateImmediately=False
    )
    pending = sm.put_secret_value(SecretId="ecomind/staging/jwt", SecretString="p" * 48, VersionStages=["AWSPENDING"])
    api = role_user(iam, "api", "deploy/iam/api-task-role.policy.json")
    later = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S")
    _, checks, _ = doctor(cli, {**api, **staging_elsewhere}, "--as-of", later)
    fix = checks["JWT_SECRET pending version"]["fix"]
    assert f"--region {ELSEWHERE}" in fix and "as ecomind-staging-rotation" in fix, fix
    rotation = role_user(iam, "rotation", "deploy/iam/rotation-lambda-role.policy.json")
    ran = run_fix(fix, shell_without_region(rotation), cli.cwd)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    current = sm.get_secret_value(SecretId="ecomind/staging/jwt", VersionStage="AWSCURRENT")
    assert current["VersionId"] == pending["VersionId"]


@pytest.mark.slow
def test_a_local_rotation_refused_to_a_task_role_names_the_rotation_role_and_its_command_runs_as_it(
    iam: tuple[MotoServer, dict[str, str]], cli: Cli, staging_elsewhere: dict[str, str]
) -> None:
    sm = admin_client(iam, ELSEWHERE)
    sm.rotate_secret(
        SecretId="ecomind/staging/jwt", RotationRules={"AutomaticallyAfterDays": 90}, RotateImmediately=False
    )
    rotation_role = model("staging").role_name("rotation")
    command = ("secrets", "rotate", "ecomind/staging/jwt", "--local", "--region", ELSEWHERE)
    fixes = []
    for role, policy in (
        ("migration", "deploy/iam/migration-task-role.policy.json"),  # may not even describe it
        ("api", "deploy/iam/api-task-role.policy.json"),  # describes and reads it; createSecret is denied
    ):
        refused = cli(*command, env=role_user(iam, role, policy))
        assert refused.returncode == 5, (role, refused.stderr)
        fix = refused.stderr.split("fix: ", 1)[1].strip()
        assert f"# as {rotation_role} or the operator" in fix, (role, fix)
        assert "resumes" not in fix and model("staging").role_name("api") not in fix, (role, fix)
        fixes.append(fix)
    assert "createSecret" in refused.stderr and "denied" in refused.stderr, refused.stderr
    rotation = role_user(iam, "rotation", "deploy/iam/rotation-lambda-role.policy.json")
    ran = run_fix(fixes[-1], shell_without_region(rotation), cli.cwd)
    assert ran.returncode == 0 and "rotated" in ran.stdout, ran.stdout + ran.stderr


@pytest.mark.slow
def test_the_doctor_as_the_migration_role_leaves_the_jwt_unchecked_and_prints_its_only_command(
    iam: tuple[MotoServer, dict[str, str]], cli: Cli, staging_elsewhere: dict[str, str]
) -> None:
    sm = admin_client(iam, ELSEWHERE)
    if "ecomind/staging/database" not in {s["Name"] for s in sm.list_secrets()["SecretList"]}:
        sm.create_secret(Name="ecomind/staging/database", SecretString=DB)
    env = {k: v for k, v in staging_elsewhere.items() if k != "DATABASE_URL"}  # both secrets by reference
    migration = assumed_role(iam, "migration", "deploy/iam/migration-task-role.policy.json")
    _, checks, _ = doctor(cli, {**migration, **env})
    assert checks["DATABASE_URL readable"]["status"] == "ok", checks["DATABASE_URL readable"]
    readable = checks["JWT_SECRET readable"]
    assert readable["status"] == "not_checked", readable
    assert f"not run for {model('staging').role_name('migration')}" in readable["detail"], readable
    assert readable["fix"] == f"AWS_REGION={ELSEWHERE} ecomind doctor --environment staging --only DATABASE_URL"
    assert '"Statement"' not in readable["fix"]
    # The report as an operator reads it prints that command under the check it would run.
    text = cli("doctor", "--timeout", "1", env={**migration, **env}).stdout
    assert f"      fix: {readable['fix']}" in text.splitlines(), text
    ran = run_fix(readable["fix"] + " --json --timeout 1", shell_without_region(migration), cli.cwd)
    after = {c["name"]: c["status"] for c in json.loads(ran.stdout)["checks"]}
    assert after["DATABASE_URL readable"] == "ok", after
    assert not any(name.startswith("JWT_SECRET") for name in after), after


@pytest.mark.slow
def test_without_a_region_the_fixes_name_none_and_run_once_the_shell_has_one(cli: Cli, aws: Aws) -> None:
    aws.create("ecomind/prod/jwt", JWT, region=ELSEWHERE)
    shell = shell_without_region(aws.env)
    _, checks, _ = doctor(cli, {**shell, "ENVIRONMENT": "production", "DATABASE_URL": DB})
    fixes = [c["fix"] for c in checks.values() if "region" in c["detail"]]
    assert fixes and all("us-east-1" not in f and "${REGION:?" in f for f in fixes), fixes
    described = cli("secrets", "describe", "ecomind/prod/jwt", env=shell)
    assert described.returncode == 3 and "us-east-1" not in described.stderr
    fix = described.stderr.split("fix: ", 1)[1].strip()
    refused = run_fix(fix, shell, cli.cwd)
    assert refused.returncode != 0 and "set REGION to the region of your secrets" in refused.stderr
    ran = run_fix(fix, {**shell, "REGION": ELSEWHERE}, cli.cwd)  # the docs' shell sets REGION
    assert ran.returncode == 0 and "ecomind/prod/jwt" in ran.stdout, ran.stderr


# -- a refused database password: the master user's URL never on the command line -------


@pytest.fixture(scope="module")
def ssl_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    """A PostgreSQL with SSL, as staging requires (sslmode=require is added to its URL)."""
    server = LocalPostgres(tmp_path_factory.mktemp("pg-ssl"), free_port(), ssl=True).start()
    yield server
    server.stop()


@pytest.mark.slow
def test_a_refused_database_password_is_fixed_with_the_master_url_in_a_file_not_the_command(
    cli: Cli, aws: Aws, ssl_postgres: LocalPostgres
) -> None:
    password = f"{CANARY}-role"
    ensure_role_and_database(ssl_postgres.superuser_dsn(), user="app_ssl", password=password, dbname="app_ssl")
    fields = {"engine": "postgres", "host": "127.0.0.1", "port": ssl_postgres.port, "dbname": "app_ssl"}
    stored = json.dumps({**fields, "username": "app_ssl", "password": "Not-the-roles-password-1"})
    sm = boto3.client("secretsmanager", region_name=ELSEWHERE, endpoint_url=aws.url)
    sm.create_secret(Name="ecomind/staging/database", SecretString=stored)
    sm.rotate_secret(
        SecretId="ecomind/staging/database", RotationRules={"AutomaticallyAfterDays": 90}, RotateImmediately=False
    )
    sm.create_secret(Name="ecomind/staging/jwt", SecretString=JWT)
    shell = shell_without_region(aws.env)
    env = {**shell, "ENVIRONMENT": "staging", "AWS_REGION": ELSEWHERE}
    _, checks, _ = doctor(cli, env)
    login = checks["database login"]
    assert login["status"] == "fail" and "password authentication failed" in login["detail"]
    command = login["fix"].split("   #", 1)[0]
    assert "--master-url-file" in command and f"--region {ELSEWHERE}" in command, login["fix"]
    assert "://" not in command and "MASTER_PASSWORD" not in command and "ECOMIND_MASTER_URL" not in command
    master = cli.cwd / "master-url"
    master.write_text(ssl_postgres.superuser_dsn() + " sslmode=require\n")  # a conninfo string serves too
    master.chmod(0o600)
    ran = run_fix(login["fix"], {**shell, "ENVIRONMENT": "staging", "MASTER_URL_FILE": str(master)}, cli.cwd)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert_clean(ran, ssl_postgres.superuser_password, password)
    _, after, _ = doctor(cli, env)
    assert after["database reachable"]["status"] == "ok", after


# -- a check that could not run is reported as not run --------------------------------------


@pytest.mark.slow
def test_the_rotation_checks_of_a_secret_that_could_not_be_read_are_not_checked_never_dropped(
    iam: tuple[MotoServer, dict[str, str]], cli: Cli, staging_elsewhere: dict[str, str]
) -> None:
    database_only = user_with(
        iam,
        "reads-the-database-only",
        [
            {
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                "Resource": "arn:aws:secretsmanager:*:*:secret:ecomind/staging/database-??????",
            }
        ],
    )
    code, checks, _ = doctor(cli, {**database_only, **staging_elsewhere})
    assert checks["JWT_SECRET readable"]["status"] == "fail"
    for check in ("JWT_SECRET rotation", "JWT_SECRET pending version"):
        assert checks[check]["status"] == "not_checked", checks
        assert "could not be read (see JWT_SECRET readable)" in checks[check]["detail"]
    assert code == 1

    admin_client(iam, ELSEWHERE).delete_secret(SecretId="ecomind/staging/jwt", RecoveryWindowInDays=7)
    _, checks, _ = doctor(cli, {**iam[1], **staging_elsewhere})
    for check in ("JWT_SECRET rotation", "JWT_SECRET pending version"):
        assert checks[check]["status"] == "not_checked" and "scheduled for deletion" in checks[check]["detail"]


# -- rehearsing on an emulator -----------------------------------------------------------------


@pytest.fixture(scope="module")
def stock_iam() -> Iterator[IamMoto]:
    """Stock moto_server with IAM enforced (not tests/support/moto_iam.py): an administrator."""
    server, admin = start_iam_moto(stock=True)
    yield server, admin
    server.stop()


@pytest.mark.slow
def test_an_emulator_answering_500_is_said_to_have_failed_and_no_other_region_is_suggested(
    cli: Cli, stock_iam: tuple[MotoServer, dict[str, str]]
) -> None:
    admin_client(stock_iam).create_secret(Name="ecomind/prod/jwt", SecretString=JWT)
    # The least-privilege pattern of deploy/iam/: stock moto reads its ?????? as a regex and answers 500.
    reader = user_with(
        stock_iam,
        "reads-the-jwt",
        [
            {
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                "Resource": "arn:aws:secretsmanager:*:*:secret:ecomind/prod/jwt-??????",
            }
        ],
    )
    env = {**reader, "ENVIRONMENT": "production", "DATABASE_URL": DB, "SECRETS_REPLICA_REGIONS": "us-west-2"}
    _, checks, _ = doctor(cli, env)
    readable = checks["JWT_SECRET readable"]
    assert readable["status"] == "fail" and "answered 500" in readable["detail"], readable
    assert "the emulator failed, not a region" in readable["detail"]
    assert '"Rehearse on an emulator"' in readable["fix"]
    for check in checks.values():
        assert "us-west-2" not in check["fix"] and "another region" not in check["fix"], check
    described = cli("secrets", "describe", "ecomind/prod/jwt", env=env)
    assert described.returncode == 6 and "the emulator failed" in described.stderr, described.stderr
    assert "--region us-west-2" not in described.stderr and "Rehearse on an emulator" in described.stderr


@pytest.mark.deploy
def test_a_stage_on_two_versions_fails_the_doctor_with_a_fix_that_runs(cli: Cli, stock_aws: Aws) -> None:
    aws, name = stock_aws, "ecomind/staging/jwt"
    aws.client.create_secret(Name=name, SecretString=JWT)
    aws.client.rotate_secret(SecretId=name, RotationRules={"AutomaticallyAfterDays": 90}, RotateImmediately=False)
    current = aws.client.describe_secret(SecretId=name)["VersionIdsToStages"]
    first = next(v for v, s in current.items() if "AWSCURRENT" in s)
    moved = aws.client.put_secret_value(SecretId=name, SecretString="m" * 48, VersionStages=["AWSPENDING"])
    aws.client.update_secret_version_stage(
        SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=moved["VersionId"], RemoveFromVersionId=first
    )
    aws.client.put_secret_value(SecretId=name, SecretString="p" * 48)  # stock moto: AWSCURRENT on two versions
    env = {**aws.env, "ENVIRONMENT": "staging", "DATABASE_URL": DB}
    _, checks, _ = doctor(cli, env)
    stages = checks["JWT_SECRET stages"]
    assert stages["status"] == "fail" and "impossible: AWSCURRENT is on 2 versions" in stages["detail"], stages
    aws_cli = REPO / ".venv-deploy" / "bin"
    shell = {**shell_without_region(aws.env), "PATH": f"{aws_cli}:{os.environ['PATH']}"}
    ran = run_fix(stages["fix"], shell, cli.cwd)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    _, after, _ = doctor(cli, env)
    assert after["JWT_SECRET stages"]["status"] == "ok", after["JWT_SECRET stages"]


def test_a_secret_outside_the_roles_policy_is_denied_when_read_in_a_batch_too(
    cli: Cli, iam: tuple[MotoServer, dict[str, str]]
) -> None:
    sm = admin_client(iam)
    existing = {s["Name"] for s in sm.list_secrets()["SecretList"]}  # the module's server, shared
    for name, value in (("ecomind/staging/database", DB), ("team-x/staging/jwt", CANARY)):
        if name not in existing:
            sm.create_secret(Name=name, SecretString=value)
    # The API role's grant, narrowed to the staging prefix: BatchGetSecretValue alone reads nothing.
    staging_only = user_with(
        iam,
        "staging-api",
        [
            {
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                "Resource": "arn:aws:secretsmanager:*:*:secret:ecomind/staging/*",
            },
            {"Effect": "Allow", "Action": "secretsmanager:BatchGetSecretValue", "Resource": "*"},
        ],
    )
    env = {**staging_only, "ENVIRONMENT": "staging", "JWT_SECRET": "aws-secretsmanager:team-x/staging/jwt"}
    _, checks, _ = doctor(cli, env)
    readable = checks["JWT_SECRET readable"]
    assert readable["status"] == "fail" and "access denied" in readable["detail"], readable
    assert "team-x/staging/jwt-??????" in readable["fix"]
    assert checks["DATABASE_URL readable"]["status"] == "ok", checks["DATABASE_URL readable"]


@pytest.mark.slow
def test_a_region_that_holds_replicas_is_said_to_take_no_writes(cli: Cli, aws: Aws) -> None:
    made = cli(
        "secrets", "provision", "-e", "production", "--db-host", "db.internal", "--replica-region", "us-west-2",
        env=aws.env,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    env = {**aws.env, "ENVIRONMENT": "production", "DATABASE_URL": DB, "AWS_REGION": "us-west-2"}
    _, checks, _ = doctor(cli, env, "--only", "JWT_SECRET")
    assert checks["JWT_SECRET readable"]["status"] == "ok"
    primary = checks["JWT_SECRET primary region"]
    assert primary["status"] == "warn" and "writes" in primary["detail"] and "go to us-east-1" in primary["detail"]
    ran = run_fix(f"{primary['fix']}\necomind doctor --json --timeout 1 --only JWT_SECRET", env, cli.cwd)
    after = {c["name"] for c in json.loads(ran.stdout)["checks"]}
    assert "JWT_SECRET readable" in after and "JWT_SECRET primary region" not in after, ran.stdout + ran.stderr


@pytest.mark.slow
def test_a_profile_that_does_not_exist_fails_the_credentials_check_and_the_other_checks_still_run(
    cli: Cli, aws: Aws
) -> None:
    aws.create("ecomind/staging/jwt", JWT)
    env = {**aws.env, "ENVIRONMENT": "staging", "DATABASE_URL": DB, "AWS_PROFILE": "nosuch"}
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = str(cli.cwd / "none")
    code, checks, _ = doctor(cli, env)
    assert code == 1
    creds = checks["AWS credentials"]
    assert creds["status"] == "fail" and "profile nosuch (AWS_PROFILE) does not exist" in creds["detail"], creds
    assert "database reachable" in checks and "configuration" in checks  # what needs no AWS ran
    assert "no AWS credentials" in checks["JWT_SECRET readable"]["detail"]
    for command in (["run", "--", "true"], ["secrets", "describe", "ecomind/staging/jwt"]):
        refused = cli(*command, env=env)
        assert refused.returncode == 5 and "profile nosuch (AWS_PROFILE) does not exist" in refused.stderr, refused
    ran = run_fix(f"{creds['fix']}\necomind doctor --json --timeout 1", env, cli.cwd)
    after = {c["name"]: c for c in json.loads(ran.stdout)["checks"]}
    assert after["AWS credentials"]["status"] == "ok" and after["JWT_SECRET readable"]["status"] == "ok", after


@pytest.mark.slow
def test_the_policy_printed_for_a_denied_read_once_attached_lets_every_check_of_the_secret_run(
    cli: Cli, iam: tuple[MotoServer, dict[str, str]], production_secrets: dict[str, str]
) -> None:
    server, admin = iam
    role = user_with(
        iam, "api-without-a-grant", [{"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}]
    )
    env = {**role, "ENVIRONMENT": "production", "DATABASE_URL": DB}
    _, checks, _ = doctor(cli, env)
    readable = checks["JWT_SECRET readable"]
    assert readable["status"] == "fail" and "attach exactly this policy" in readable["fix"], readable
    policy = readable["fix"][readable["fix"].index("{") :]
    iam_client = boto3.client(
        "iam",
        region_name="us-east-1",
        endpoint_url=server.url,
        aws_access_key_id=admin["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=admin["AWS_SECRET_ACCESS_KEY"],
    )
    iam_client.put_user_policy(UserName="api-without-a-grant", PolicyName="printed", PolicyDocument=policy)
    _, after, _ = doctor(cli, env)
    assert after["JWT_SECRET readable"]["status"] == "ok", after["JWT_SECRET readable"]
    for check in ("JWT_SECRET rotation", "JWT_SECRET pending version", "JWT_SECRET stages"):
        assert after[check]["status"] != "not_checked", after[check]


@pytest.mark.slow
def test_a_check_left_out_by_only_is_not_a_check_that_could_not_run(cli: Cli, aws: Aws) -> None:
    made = cli(
        "secrets", "provision", "-e", "staging", "--db-host", "db.internal", "--enable-rotation",
        "--rotation-driver", "local", env=aws.env,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    code, checks, _ = doctor(cli, {**aws.env, "ENVIRONMENT": "staging"}, "--only", "JWT_SECRET")
    assert code == 0, {n: c for n, c in checks.items() if c["status"] != "ok"}
    assert "JWT_SECRET rotation" in checks and not any(name.startswith("database") for name in checks)


# -- Redis that may evict a logout ---------------------------------------------------------


def test_a_redis_that_may_evict_revocations_is_diagnosed_and_the_fix_runs(cli: Cli, tmp_path: Path) -> None:
    from app.data.local import LocalRedis

    server = LocalRedis(free_port()).start()
    try:
        subprocess.run(
            ["redis-cli", "-p", str(server.port), "CONFIG", "SET", "maxmemory-policy", "volatile-lru"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        env = {"DATABASE_URL": DB, "JWT_SECRET": JWT, "REDIS_URL": f"redis://127.0.0.1:{server.port}/0"}
        _, checks, _ = doctor(cli, env)
        eviction = checks["redis eviction"]
        assert eviction["status"] == "fail", eviction
        assert "maxmemory-policy volatile-lru" in eviction["detail"] and "token works again" in eviction["detail"]
        assert eviction["fix"].startswith(f"redis-cli -h 127.0.0.1 -p {server.port} CONFIG SET maxmemory-policy")
        assert "modify-cache-parameter-group" in eviction["fix"]  # the ElastiCache way, named too
        ran = run_fix(eviction["fix"], env, tmp_path)
        assert ran.returncode == 0, ran.stderr
        _, checks, _ = doctor(cli, env)
        assert checks["redis eviction"]["status"] == "ok", checks["redis eviction"]
    finally:
        server.stop()


@pytest.fixture
def redis_with_a_password() -> Iterator[int]:
    """A Redis on this machine that takes the password "right" only."""
    from app.data.local import LocalRedis

    server = LocalRedis(free_port()).start()
    try:
        subprocess.run(
            ["redis-cli", "-p", str(server.port), "CONFIG", "SET", "requirepass", "right"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        yield server.port
    finally:
        server.stop()


def test_a_redis_that_needs_a_password_or_refuses_it_in_development_is_fixed_by_init(
    cli: Cli, redis_with_a_password: int
) -> None:
    port = redis_with_a_password
    env = {"DATABASE_URL": DB, "JWT_SECRET": JWT}
    for url, said in ((f"redis://127.0.0.1:{port}/0", "NOAUTH"), (f"redis://:wrong@127.0.0.1:{port}/0", "WRONGPASS")):
        _, checks, _ = doctor(cli, {**env, "REDIS_URL": url})
        check = checks["redis"]
        assert check["status"] == "fail" and said in check["detail"], check
        assert check["fix"].startswith("ecomind init --force"), check
    # The repository's folder, whose .env points at the other Redis.
    (cli.cwd / ".env.example").write_text((REPO / ".env.example").read_text())
    (cli.cwd / ".env").write_text(f"REDIS_URL=redis://127.0.0.1:{port}/0\n")
    ran = run_fix(check["fix"], {}, cli.cwd)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    written = (cli.cwd / ".env").read_text()
    assert f"127.0.0.1:{port}/" not in written and "REDIS_URL=redis://127.0.0.1:" in written, written


def test_a_redis_password_read_from_a_secret_is_fixed_by_setting_that_secret(
    cli: Cli, aws: Aws, redis_with_a_password: int
) -> None:
    port = redis_with_a_password
    aws.create("ecomind/staging/redis", f"redis://127.0.0.1:{port}/0")
    env = {
        **aws.env,
        "ENVIRONMENT": "staging",
        "DATABASE_URL": DB,
        "JWT_SECRET": JWT,
        "REDIS_URL": "aws-secretsmanager:ecomind/staging/redis",
    }
    _, checks, _ = doctor(cli, env)
    check = checks["redis"]
    assert check["status"] == "fail" and "NOAUTH" in check["detail"], check
    assert "ecomind secrets set ecomind/staging/redis --region us-east-1" in check["fix"], check
    value = f"redis://:right@127.0.0.1:{port}/0"
    ran = run_fix(check["fix"], {**shell_without_region(aws.env), "VALUE": value}, cli.cwd)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    _, after, _ = doctor(cli, env)
    assert after["redis"]["status"] != "fail", after["redis"]
