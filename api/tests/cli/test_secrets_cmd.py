"""`ecomind secrets ...`: what each command says when it cannot do what was asked, and the
fix it prints, run as printed (moto's server, a shell that does not export AWS_REGION)."""

from __future__ import annotations

from ..conftest import Aws, Cli, assert_clean
from .conftest import run_fix

ELSEWHERE = "eu-west-1"  # not the tests' default region: a fix must carry its own


def shell_without_region(aws: Aws) -> dict[str, str]:
    """The shell the docs run commands in: AWS_REGION is passed inline, never exported."""
    return {k: v for k, v in aws.env.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}


def fix_of(stderr: str) -> str:
    return stderr.split("fix: ", 1)[1].strip()


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
