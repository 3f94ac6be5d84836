"""What the CLI tells an operator: data printed verbatim, a check that could not run said as such,
printed fixes that run as printed, messages that say what happened, and the habits of other tools.

The journey (tests/journey) runs the guides end to end; each message is pinned down alone here.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from ..conftest import REGION, Aws, Cli, Database, assert_clean
from ..support.iam import admin_client, user_with
from ..support.services import MotoServer, free_port
from .conftest import run_fix

REPO = Path(__file__).resolve().parents[3]
JWT = "k" * 48


def provision(cli: Cli, aws: Aws, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return cli("secrets", "provision", "-e", "staging", "--db-host", "db.internal", *extra, env=env or aws.env)


# -- data prints verbatim ---------------------------------------------------------------


def test_arns_and_policies_print_verbatim(cli: Cli, aws: Aws) -> None:
    arn = aws.create("ecomind/staging/jwt", JWT)
    described = cli("secrets", "describe", "ecomind/staging/jwt", env=aws.env)
    assert arn in described.stdout and ":secret:" in described.stdout
    env = {**aws.env, "ENVIRONMENT": "staging", "DATABASE_URL": "postgresql://u:Pw-1234567@h/db", "JWT_SECRET": arn}
    check = cli("config", "check", env=env)
    assert arn in check.stdout, check.stdout  # the source column: the ARN as written
    assert "🤫" not in described.stdout + check.stdout


# -- a check that could not run is not a pass -------------------------------------------


def test_doctor_without_describe_secret_says_not_checked(iam: tuple[MotoServer, dict[str, str]]) -> None:
    sm = admin_client(iam)
    for name, value in (
        ("ecomind/prod/database", "postgresql://u:Pw-1234567@127.0.0.1:1/db"),
        ("ecomind/prod/jwt", JWT),
    ):
        sm.create_secret(Name=name, SecretString=value)
    only_read = user_with(
        iam,
        "reader-only",
        [
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "arn:aws:secretsmanager:*:*:secret:ecomind/prod/*",
            },
            {"Effect": "Allow", "Action": "secretsmanager:BatchGetSecretValue", "Resource": "*"},
        ],
    )
    result = Cli(Path.cwd())("doctor", "--json", "--timeout", "1", env={**only_read, "ENVIRONMENT": "production"})
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["JWT_SECRET readable"]["status"] == "ok"
    assert checks["JWT_SECRET rotation"]["status"] == "not_checked"
    assert "DescribeSecret denied" in checks["JWT_SECRET rotation"]["detail"]
    # The database does not answer, so the doctor fails (1); were it up, it would exit 8, not 0.
    assert result.returncode == 1


def test_wrong_region_says_what_it_could_not_look_at(iam: tuple[MotoServer, dict[str, str]]) -> None:
    admin_client(iam).create_secret(Name="ecomind/prod/jwt2", SecretString=JWT)
    reader = user_with(
        iam,
        "reader-anywhere",
        [{"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": "*"}],
    )
    env = {**reader, "AWS_REGION": "eu-west-1", "DATABASE_URL": "postgresql://u:Pw-1234567@127.0.0.1:1/db"}
    env["JWT_SECRET"] = "aws-secretsmanager:ecomind/prod/jwt2"
    result = Cli(Path.cwd())("doctor", "--json", "--timeout", "1", env=env)
    check = {c["name"]: c for c in json.loads(result.stdout)["checks"]}["JWT_SECRET readable"]
    assert "nor in any other region" not in check["detail"]
    assert "lookups were denied" in check["detail"] and "ListSecrets denied" in check["detail"]


# -- every printed fix runs as printed -------------------------------------------------


@pytest.mark.slow
def test_rotating_a_fresh_secret_prints_a_fix_that_works(cli: Cli, aws: Aws) -> None:
    assert provision(cli, aws).returncode == 0
    refused = cli("secrets", "rotate", "ecomind/staging/jwt", "--local", env=aws.env)
    assert refused.returncode == 3 and "rotation is not enabled" in refused.stderr
    assert "run the same command again" not in refused.stderr
    fix = re.search(r"fix: (.*)", refused.stderr).group(1)  # type: ignore[union-attr]
    assert run_fix(fix, aws.env, cli.cwd).returncode == 0
    rotated = cli("secrets", "rotate", "ecomind/staging/jwt", "--local", env=aws.env)
    assert rotated.returncode == 0, rotated.stderr
    assert_clean(rotated, JWT)


@pytest.mark.slow
def test_the_doctors_rotation_fix_runs_as_printed(cli: Cli, aws: Aws, database: Database) -> None:
    aws.create("ecomind/staging/database", database.rds_secret())
    aws.create("ecomind/staging/jwt", JWT)
    env = {**aws.env, "ENVIRONMENT": "staging"}
    first = cli("doctor", "--json", "--timeout", "1", env=env)
    rotation = {c["name"]: c for c in json.loads(first.stdout)["checks"]}["JWT_SECRET rotation"]
    assert rotation["status"] == "fail" and "--db-host" not in rotation["fix"]
    ran = run_fix(rotation["fix"], env, cli.cwd)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    again = cli("doctor", "--json", "--timeout", "1", env=env)
    assert {c["name"]: c for c in json.loads(again.stdout)["checks"]}["JWT_SECRET rotation"]["status"] == "ok"


# -- a secret scheduled for deletion ------------------------------------------------------


@pytest.mark.slow
def test_a_secret_scheduled_for_deletion_is_named_as_such_everywhere(cli: Cli, aws: Aws) -> None:
    assert provision(cli, aws).returncode == 0
    aws.client.delete_secret(SecretId="ecomind/staging/jwt", RecoveryWindowInDays=7)
    env = {**aws.env, "ENVIRONMENT": "staging"}
    check = cli("config", "check", env=env)
    assert check.returncode == 4
    assert re.search(r"scheduled for deletion on \d{4}-\d\d-\d\d", check.stderr), check.stderr
    assert "fix: ecomind secrets restore ecomind/staging/jwt" in check.stderr
    doctor = json.loads(cli("doctor", "--json", "--timeout", "1", env=env).stdout)
    readable = {c["name"]: c for c in doctor["checks"]}["JWT_SECRET readable"]
    assert "scheduled for deletion on" in readable["detail"] and "ecomind doctor" not in readable["fix"]
    listed = json.loads(cli("secrets", "list", "-e", "staging", "--json", env=aws.env).stdout)["secrets"]
    assert {r["name"]: r["state"] for r in listed}["ecomind/staging/jwt"].startswith("scheduled for deletion on")
    described = cli("secrets", "describe", "ecomind/staging/jwt", env=aws.env)
    assert "scheduled for deletion on" in described.stdout
    again = provision(cli, aws)
    assert "scheduled for deletion on" in again.stdout and "ecomind secrets restore" in again.stdout
    restored = run_fix("ecomind secrets restore ecomind/staging/jwt", aws.env, cli.cwd)
    assert restored.returncode == 0 and "restored" in restored.stdout
    assert cli("config", "check", env=env).returncode == 0


def test_a_deletion_date_reads_the_same_in_utc_wherever_it_is_said(cli: Cli, aws: Aws) -> None:
    """The date a read fails on and the date the listing shows are one date, in UTC, whatever the machine's zone."""
    assert provision(cli, aws).returncode == 0
    aws.client.delete_secret(SecretId="ecomind/staging/jwt", RecoveryWindowInDays=7)
    elsewhere = {**aws.env, "TZ": "Asia/Tokyo"}
    check = cli("config", "check", env={**elsewhere, "ENVIRONMENT": "staging"})
    listed = json.loads(cli("secrets", "list", "-e", "staging", "--json", env=elsewhere).stdout)["secrets"]
    state = {r["name"]: r["state"] for r in listed}["ecomind/staging/jwt"]
    assert state.startswith("scheduled for deletion on ") and state.endswith(" UTC"), state
    assert state in check.stderr, check.stderr


def test_after_a_force_delete_the_doctor_suggests_no_other_secret(cli: Cli, aws: Aws) -> None:
    assert provision(cli, aws).returncode == 0
    aws.client.delete_secret(SecretId="ecomind/staging/jwt", ForceDeleteWithoutRecovery=True)
    doctor = json.loads(cli("doctor", "--json", "--timeout", "1", env={**aws.env, "ENVIRONMENT": "staging"}).stdout)
    readable = {c["name"]: c for c in doctor["checks"]}["JWT_SECRET readable"]
    assert "ecomind/staging/database" not in readable["detail"] + readable["fix"]
    assert readable["fix"].startswith("ecomind secrets provision --environment staging --region us-east-1   # ")


# -- messages that say what happened -----------------------------------------------------


def test_no_credentials_and_no_region_are_said_as_such(cli: Cli) -> None:
    base = {"ENVIRONMENT": "staging", "AWS_REGION": REGION, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    base["AWS_CONFIG_FILE"] = base["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent"
    doctor = json.loads(cli("doctor", "--json", "--timeout", "1", env=base).stdout)
    checks = {c["name"]: c for c in doctor["checks"]}
    assert checks["AWS credentials"]["status"] == "fail" and "no credentials" in checks["AWS credentials"]["detail"]
    readable = checks["DATABASE_URL readable"]
    assert "access denied" not in readable["detail"] and "ACCOUNT_ID" not in readable["fix"]
    no_region = {**base, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
    del no_region["AWS_REGION"]
    text = cli("doctor", "--timeout", "1", env=no_region).stdout
    assert "None" not in text and "no region set" in text


def test_a_dns_failure_is_not_a_security_group_problem(cli: Cli) -> None:
    env = {"DATABASE_URL": "postgresql://u:Pw-1234567@no-such-host.invalid:5432/db", "JWT_SECRET": JWT}
    checks = {c["name"]: c for c in json.loads(cli("doctor", "--json", "--timeout", "1", env=env).stdout)["checks"]}
    assert "does not resolve" in checks["database host"]["detail"]
    assert "security-group" not in checks["database host"]["fix"]


def test_an_example_value_in_secrets_manager_is_fixed_by_rotating_it(cli: Cli, aws: Aws) -> None:
    aws.create("ecomind/staging/database", json.dumps({"connection_string": "postgresql://u:Pw-1234567@h/db"}))
    aws.create("ecomind/staging/jwt", "changeme")
    check = cli("config", "check", env={**aws.env, "ENVIRONMENT": "staging"})
    assert "holds a known example value" in check.stderr
    assert "fix: ecomind secrets rotate ecomind/staging/jwt" in check.stderr


# -- a stage that is not there -----------------------------------------------------------


def test_get_of_an_absent_stage_says_no_rotation_is_in_progress(cli: Cli, aws: Aws) -> None:
    aws.create("ecomind/staging/jwt", JWT)
    result = cli("secrets", "get", "ecomind/staging/jwt", "--stage", "AWSPENDING", env=aws.env)
    assert result.returncode == 4
    assert "no version of ecomind/staging/jwt is staged AWSPENDING (no rotation is in progress)" in result.stderr
    assert "check the name and AWS_REGION" not in result.stderr


# -- one bad variable does not hide the others -----------------------------------------


def test_config_check_shows_every_value_it_has(cli: Cli, aws: Aws) -> None:
    env = {**aws.env, "ENVIRONMENT": "production", "DATABASE_URL": "mysql://u:Pw-1234567@h/db", "JWT_SECRET": JWT}
    result = cli("config", "check", env=env)
    assert result.returncode == 3
    assert "EcoMind configuration (production)" in result.stdout
    rows = {r["variable"]: r for r in json.loads(cli("config", "check", "--json", env=env).stdout)["variables"]}
    assert rows["ENVIRONMENT"]["value"] == "production" and rows["AWS_REGION"]["value"] == REGION
    assert rows["JWT_SECRET"]["value"] == "**** (48 bytes)"


# -- the guide's policies exist before the key -------------------------------------------


def test_no_policy_needs_a_key_arn_that_does_not_exist_yet() -> None:
    for path in (REPO / "deploy/iam").glob("*.json"):
        assert "KMS_KEY_ARN" not in path.read_text(), path.name
    assert "KMS_KEY_ARN" not in (REPO / "docs/deployment.md").read_text()


# -- --only reads only what it injects -------------------------------------------------


def test_run_only_database_url_never_reads_the_jwt(iam: tuple[MotoServer, dict[str, str]], database: Database) -> None:
    sm = admin_client(iam)
    sm.create_secret(Name="ecomind/staging/database", SecretString=database.rds_secret())
    sm.create_secret(Name="ecomind/staging/jwt", SecretString=JWT)
    migration = user_with(
        iam,
        "migration-only",
        [
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "arn:aws:secretsmanager:*:*:secret:ecomind/staging/database-??????",
            }
        ],
    )
    env = {**migration, "ENVIRONMENT": "development", "SECRETS_PREFIX": "ecomind/staging"}
    env["DATABASE_URL"] = "aws-secretsmanager:ecomind/staging/database"
    env["JWT_SECRET"] = "aws-secretsmanager:ecomind/staging/jwt"
    cli = Cli(Path.cwd())
    denied = cli("run", "--", "true", env=env)
    assert denied.returncode == 5 and "JWT_SECRET" in denied.stderr
    allowed = cli("run", "--only", "DATABASE_URL", "--", "sh", "-c", 'test -n "$DATABASE_URL"', env=env)
    assert allowed.returncode == 0, allowed.stderr


# -- what operators of other tools expect -----------------------------------------------


def test_long_names_are_never_cut_in_a_pipe(cli: Cli, aws: Aws) -> None:
    long_names = [f"ecomind/staging/{'a-very-long-secret-name-for-a-narrow-terminal-' * 2}{i}" for i in (1, 2)]
    for name in long_names:
        aws.create(name, "x")
    listed = cli("secrets", "list", "-e", "staging", env={**aws.env, "COLUMNS": "80"})
    for name in long_names:
        assert name in listed.stdout
    elsewhere = cli("secrets", "list", "-e", "staging", "--region", "eu-west-1", env=aws.env)
    assert "no secrets under ecomind/staging/ in eu-west-1" in elsewhere.stdout


@pytest.mark.slow
def test_version_json_region_and_environment_options(cli: Cli, aws: Aws) -> None:
    assert re.fullmatch(r"ecomind \d+\.\d+\.\d+\n", cli("--version").stdout)
    plan = cli("secrets", "provision", "-e", "staging", "--db-host", "h", "--dry-run", "--json", env=aws.env)
    assert json.loads(plan.stdout)["dry_run"] is True
    aws.create("ecomind/staging/jwt", JWT, region="eu-west-1")
    got = cli("secrets", "get", "ecomind/staging/jwt", "--region", "eu-west-1", "--json", env=aws.env)
    assert json.loads(got.stdout)["value"] == JWT
    for args in (["migrate"], ["secrets", "get"], ["secrets", "rotate"]):
        assert "--environment" in cli(*args, "--help").stdout or "--region" in cli(*args, "--help").stdout


def test_short_common_values_do_not_eat_other_fields(cli: Cli) -> None:
    env = {
        "DATABASE_URL": "postgresql://u:Pw-1234567@h/db",
        "JWT_SECRET": "development",
        "REDIS_URL": "redis://h:6379/0",
    }
    shown = cli("config", "show", env=env).stdout
    assert "ENVIRONMENT=development" in shown and "SECRETS_CACHE_TTL=300  # default" in shown
    as_json = json.loads(cli("config", "show", "--json", env=env).stdout)
    assert as_json["REDIS_URL"]["value"] == "redis://h:6379/0" and as_json["ENVIRONMENT"]["value"] == "development"
    assert as_json["SECRETS_CACHE_TTL"] == {"value": "300", "source": "default"}


# -- one rule for an email ---------------------------------------------------------------


@pytest.mark.parametrize("email", ["admin@acme.test", "root@localhost", "not-an-email"])
def test_create_admin_refuses_what_the_api_refuses(cli: Cli, email: str) -> None:
    from pydantic import TypeAdapter, ValidationError

    from app.auth.emails import Email  # the type of the API's email fields (login, users)

    with pytest.raises(ValidationError):
        TypeAdapter(Email).validate_python(email)
    result = cli("users", "create-admin", "--org", "Acme", "--email", email, input="x-strong-P4ssword-9\n")
    assert result.returncode == 2 and "--email" in result.stderr


# -- set, history, restore, export, completion -----------------------------------------


@pytest.mark.slow
def test_set_reads_stdin_history_lists_versions_export_prints_once(cli: Cli, aws: Aws) -> None:
    aws.create("ecomind/staging/jwt", JWT)
    aws.create("ecomind/staging/database", json.dumps({"connection_string": "postgresql://u:Pw-1234567@h/db"}))
    new = "n" * 48
    stored = cli("secrets", "set", "ecomind/staging/jwt", input=new + "\n", env=aws.env)
    assert stored.returncode == 0 and new not in stored.stdout + stored.stderr
    assert aws.client.get_secret_value(SecretId="ecomind/staging/jwt")["SecretString"] == new
    keyed = cli("secrets", "set", "ecomind/staging/database", "host", input="db2\n", env=aws.env)
    assert keyed.returncode == 0
    assert json.loads(aws.client.get_secret_value(SecretId="ecomind/staging/database")["SecretString"])["host"] == "db2"
    history = json.loads(cli("secrets", "history", "ecomind/staging/jwt", "--json", env=aws.env).stdout)["versions"]
    assert [v["stages"] for v in history][:2] == [["AWSCURRENT"], ["AWSPREVIOUS"]]
    exported = cli("export", "--environment", "staging", "--only", "JWT_SECRET", "--format", "json", env=aws.env)
    assert json.loads(exported.stdout) == {"JWT_SECRET": new}
    dotenv = cli("export", "--environment", "staging", "--only", "JWT_SECRET", env=aws.env)
    assert dotenv.stdout == f"JWT_SECRET='{new}'\n"
    assert "--install-completion" in cli("--help").stdout
    assert "--install-completion" in (REPO / "README.md").read_text()
