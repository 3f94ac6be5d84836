"""`ecomind` as a user runs it: a subprocess, in a folder of its own, against moto."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest

from ..conftest import CANARY, REGION, Aws, Cli, assert_clean
from ..support.services import MotoServer, free_port
from .conftest import run_fix

REPO = Path(__file__).resolve().parents[3]
JWT = "k" * 48
GOOD_URL = "postgresql://u:Real-pw-123@db:5432/app"


def test_init_writes_a_private_env_with_fresh_secrets(cli: Cli) -> None:
    result = cli("init", "--example", str(REPO / ".env.example"))
    assert result.returncode == 0, result.stderr
    env_file = cli.cwd / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    text = env_file.read_text()
    assert "REPLACE_WITH_GENERATED" not in text
    values = dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert len(values["JWT_SECRET"]) >= 43  # >= 256 bits of urlsafe base64
    assert values["JWT_SECRET"] not in result.stdout + result.stderr
    check = cli("config", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "configuration valid" in check.stdout
    assert_clean(check, values["JWT_SECRET"], values["DATABASE_URL"].split(":")[2].split("@")[0])


def test_init_refuses_to_overwrite_without_force(cli: Cli) -> None:
    (cli.cwd / ".env").write_text(f"JWT_SECRET={CANARY}\n")
    refused = cli("init", "--example", str(REPO / ".env.example"))
    assert refused.returncode == 1 and "already exists" in refused.stderr
    assert (cli.cwd / ".env").read_text() == f"JWT_SECRET={CANARY}\n"
    forced = cli("init", "--force", "--example", str(REPO / ".env.example"))
    assert forced.returncode == 0
    assert (cli.cwd / ".env.bak").read_text() == f"JWT_SECRET={CANARY}\n"
    assert stat.S_IMODE((cli.cwd / ".env.bak").stat().st_mode) == 0o600
    assert_clean(forced)


@pytest.mark.slow
def test_production_from_moto_is_valid_and_masked(cli: Cli, aws: Aws) -> None:
    aws.create(
        "ecomind/prod/database",
        json.dumps(
            {
                "engine": "postgres",
                "host": "rds",
                "port": 5432,
                "dbname": "ecomind",
                "username": "ecomind_app",
                "password": CANARY,
            }
        ),
    )
    aws.create("ecomind/prod/jwt", JWT)
    result = cli("config", "check", "--json", env={**aws.env, "ENVIRONMENT": "production"})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    rows = {row["variable"]: row for row in report["variables"]}
    assert rows["DATABASE_URL"]["value"] == "postgresql://ecomind_app:****@rds:5432/ecomind?sslmode=require"
    assert rows["DATABASE_URL"]["source"] == "default -> aws-secretsmanager:ecomind/prod/database"
    assert rows["JWT_SECRET"]["value"] == "**** (48 bytes)"
    assert_clean(result, JWT)
    shown = cli("config", "show", env={**aws.env, "ENVIRONMENT": "production"})
    assert shown.returncode == 0 and "sslmode=require" in shown.stdout
    assert_clean(shown, JWT)


def _plain(aws: Aws) -> dict[str, str]:
    aws.create("bad/plain", CANARY)
    aws.create("bad/obj", json.dumps({"url": f"postgresql://u:{CANARY}@h/db"}))
    return aws.env


BAD_INPUTS = {
    # case: (environment, variable named, words of the message, exit code)
    "unknown ENVIRONMENT": ({"ENVIRONMENT": "prod"}, "ENVIRONMENT", "development, staging, production", 3),
    "malformed URL": ({"DATABASE_URL": f"postgresql://u:{CANARY}@h:99999/db"}, "DATABASE_URL", "does not parse", 3),
    "non-PostgreSQL URL": ({"DATABASE_URL": f"mysql://u:{CANARY}@h/db"}, "DATABASE_URL", "not a PostgreSQL URL", 3),
    "missing secret": ({"DATABASE_URL": "aws-secretsmanager:bad/nothing"}, "DATABASE_URL", "not found", 4),
    "not JSON where a key is asked": (
        {"JWT_SECRET": "aws-secretsmanager:bad/plain:password"},
        "JWT_SECRET",
        "not a JSON object",
        3,
    ),
    "missing JSON key": (
        {"DATABASE_URL": "aws-secretsmanager:bad/obj:password"},
        "DATABASE_URL",
        "no key 'password'",
        3,
    ),
    "malformed reference": ({"JWT_SECRET": "aws-secretsmanager:bad name"}, "JWT_SECRET", "no valid secret name", 3),
    "stage and version id": (
        {"JWT_SECRET": "aws-secretsmanager:bad/plain::AWSCURRENT:0f3c"},
        "JWT_SECRET",
        "both a version stage",
        3,
    ),
    "unreadable file": ({"JWT_SECRET": "file:/nonexistent/jwt"}, "JWT_SECRET", "no such file", 4),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gets_one_clear_error_and_no_value(cli: Cli, aws: Aws, case: str) -> None:
    env, variable, needle, code = BAD_INPUTS[case]
    base = {**_plain(aws), "DATABASE_URL": GOOD_URL, "JWT_SECRET": JWT}
    result = cli("config", "check", env={**base, **env})
    assert result.returncode == code, result.stdout + result.stderr
    assert variable in result.stderr and needle in result.stderr, result.stderr
    assert "fix:" in result.stderr
    assert_clean(result, JWT)
    as_json = cli("config", "check", "--json", env={**base, **env})
    assert as_json.returncode == code
    report = json.loads(as_json.stdout)
    assert report["valid"] is False and any(p["variable"] == variable for p in report["problems"])
    assert_clean(as_json, JWT)


def test_denied_secret(cli: Cli, iam_moto: tuple[MotoServer, dict[str, str]]) -> None:
    _, env = iam_moto
    result = cli("config", "check", env={**env, "ENVIRONMENT": "production"})
    assert result.returncode == 5
    assert (
        "DATABASE_URL" in result.stderr and "access to aws-secretsmanager:ecomind/prod/database denied" in result.stderr
    )
    assert "GetSecretValue" in result.stderr
    assert_clean(result, JWT)


def test_secrets_manager_down_at_start_names_the_endpoint(cli: Cli) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    env = {
        "ENVIRONMENT": "production",
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    result = cli("config", "check", env=env)
    assert result.returncode == 6
    assert f"Secrets Manager at {endpoint} is unreachable" in result.stderr
    assert_clean(result)


def test_usage_error_exits_2(cli: Cli) -> None:
    result = cli("config", "check", "--environment", "prod")
    assert result.returncode == 2
    assert_clean(result)


@pytest.mark.slow
def test_secrets_get_prints_the_value_asked_for(cli: Cli, aws: Aws) -> None:
    aws.create("get/db", json.dumps({"password": "pw-current"}))
    aws.client.put_secret_value(
        SecretId="get/db", SecretString=json.dumps({"password": "pw-pending"}), VersionStages=["AWSPENDING"]
    )
    current = cli("secrets", "get", "aws-secretsmanager:get/db:password", env=aws.env)
    pending = cli("secrets", "get", "get/db", "--stage", "AWSPENDING", env=aws.env)
    assert (current.returncode, current.stdout) == (0, "pw-current\n")
    assert pending.returncode == 0 and json.loads(pending.stdout) == {"password": "pw-pending"}
    missing = cli("secrets", "get", "get/none", env=aws.env)
    assert missing.returncode == 4 and "not found" in missing.stderr
    assert_clean(missing)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["init"],
        ["config", "check"],
        ["config", "show"],
        ["secrets", "get"],
        ["secrets", "provision"],
        ["secrets", "list"],
        ["secrets", "describe"],
        ["secrets", "rotate"],
        ["run"],
        ["doctor"],
        ["migrate"],
        ["dev"],
        ["users", "create-admin"],
    ],
)
def test_every_command_has_help_with_an_example(cli: Cli, args: list[str]) -> None:
    result = cli(*args, "--help")
    assert result.returncode == 0
    assert "Example" in result.stdout


def test_example_values_in_production_are_named_never_shown(cli: Cli, aws: Aws) -> None:
    (cli.cwd / ".env").write_text(f"JWT_SECRET={CANARY}\n")
    env = {
        **aws.env,
        "ENVIRONMENT": "production",
        "DATABASE_URL": "postgresql://ecomind:ecomind_dev_pass@localhost:5432/ecomind",
        "JWT_SECRET": "local_dev_secret_change_in_production",
    }
    result = cli("config", "check", env=env)
    assert result.returncode == 3
    assert "DATABASE_URL (from process environment): holds a known example value" in result.stderr
    assert "JWT_SECRET (from process environment): holds a known example value" in result.stderr
    assert "a .env file is present and ignored in production" in result.stdout
    assert_clean(result, "ecomind_dev_pass", "local_dev_secret_change_in_production")


def test_the_exit_code_table_of_the_docs_is_the_code() -> None:
    from app.cli.output import ExitCode

    text = (REPO / "docs/troubleshooting.md").read_text()
    rows = re.findall(r"^\| (\d+) \| (\w+) \|", text, re.M)
    assert {(int(code), name) for code, name in rows} == {(int(c), c.name.lower()) for c in ExitCode}


@pytest.mark.slow
@pytest.mark.parametrize("command", [["run", "--", "true"], ["export"], ["migrate"]])
def test_errors_and_warnings_are_counted_apart(cli: Cli, command: list[str]) -> None:
    (cli.cwd / ".env").write_text(f"JWT_SECRET={CANARY}\n")  # read in development only: a warning in staging
    example = "postgresql://u:changeme@db:5432/app"  # an example value: an error in staging
    env = {"ENVIRONMENT": "staging", "DATABASE_URL": example, "JWT_SECRET": JWT}
    refused = cli(*command, env=env)
    assert refused.returncode == 3, refused.stderr
    assert "configuration invalid: 1 error(s), 1 warning(s)" in refused.stderr, refused.stderr
    bullets = sorted(line for line in refused.stderr.splitlines() if line.startswith("- "))
    assert len(bullets) == 2 and bullets[0].startswith("- error DATABASE_URL"), bullets
    assert bullets[1].startswith("- warning .env"), bullets
    assert_clean(refused, "changeme")


@pytest.mark.slow
def test_a_region_that_is_no_region_name_is_a_configuration_error_with_a_fix_that_runs(cli: Cli, aws: Aws) -> None:
    aws.create("ecomind/staging/jwt", JWT)
    shell = {k: v for k, v in aws.env.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    option = cli("secrets", "describe", "ecomind/staging/jwt", "--region", "us east 1", env=aws.env)
    assert option.returncode == 3 and "--region 'us east 1' is not a region name" in option.stderr, option.stderr
    fix = option.stderr.split("fix: ", 1)[1].strip()
    ran = run_fix(fix, {**shell, "REGION": REGION}, cli.cwd)
    assert ran.returncode == 0 and "ecomind/staging/jwt" in ran.stdout, ran.stdout + ran.stderr
    blank = {**aws.env, "AWS_REGION": f"{REGION} ", "ENVIRONMENT": "staging", "DATABASE_URL": GOOD_URL}
    for command in (["secrets", "describe", "ecomind/staging/jwt"], ["config", "check"], ["run", "--", "true"]):
        refused = cli(*command, env=blank)
        assert refused.returncode == 3 and "is not a region name" in refused.stderr, refused.stdout + refused.stderr
        assert f"fix: export AWS_REGION={REGION}   # without the blanks" in refused.stdout + refused.stderr
        ran = run_fix(f"export AWS_REGION={REGION}\necomind {' '.join(command)}", blank, cli.cwd)
        assert ran.returncode == 0, ran.stdout + ran.stderr


@pytest.mark.parametrize("command", ["describe", "history", "restore", "rotate", "set"])
def test_an_empty_secret_name_is_a_usage_error(cli: Cli, aws: Aws, command: str) -> None:
    refused = cli("secrets", command, "", input="v" * 48, env=aws.env)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "not an empty string" in refused.stderr and f"fix: ecomind secrets {command} --help" in refused.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [["secrets", "describe", "ecomind/staging/jwt"], ["config", "check"], ["doctor"], ["run", "--", "true"]],
)
def test_an_endpoint_that_is_no_url_is_a_configuration_error_naming_the_variable(
    cli: Cli, aws: Aws, command: list[str]
) -> None:
    aws.create("ecomind/staging/jwt", JWT)
    env = {**aws.env, "ENVIRONMENT": "staging", "DATABASE_URL": GOOD_URL, "AWS_ENDPOINT_URL": "notaurl"}
    refused = cli(*command, env=env)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "AWS_ENDPOINT_URL: 'notaurl' is not a URL" in refused.stderr, refused.stderr
    fix = refused.stderr.split("fix: ", 1)[1].splitlines()[0]
    assert fix.startswith("unset AWS_ENDPOINT_URL"), fix
    # The fix, then the endpoint the tests use (an emulator on this machine), as its comment says.
    ran = run_fix(
        f"{fix}\nexport AWS_ENDPOINT_URL={aws.url}\necomind secrets describe ecomind/staging/jwt", env, cli.cwd
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
