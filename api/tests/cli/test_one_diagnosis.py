"""One diagnosis: `config check` and `doctor` report the same problems, because both run
the inspection `load_settings` runs; and no raw input reaches any output, whatever its shape.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from typing import Any

import pytest

from ..conftest import CANARY, Aws, Cli, assert_clean
from ..support.environment import child_env
from ..support.services import free_port

JWT = "k" * 48
# Two pieces of the canary: a URL whose password holds a raw delimiter between them. Neither may
# appear anywhere, alone or with what a driver reads after it.
HEAD, TAIL = CANARY[:20], CANARY[20:]
# A piece between two raw '@' of a password: every parser reads it as the host and a driver quotes it.
PIECE = "op-7781-piece"
DB = "postgresql://u:Real-pw-123@127.0.0.1:1/app"

CONFIGURATIONS: dict[str, dict[str, str]] = {
    "redis over http and a negative TTL": {"REDIS_URL": "http://cache:6379/0", "SECRETS_CACHE_TTL": "-1"},
    "a port that is not a number": {"DATABASE_URL": "postgresql://u:p@127.0.0.1:notaport/db"},
    "a MySQL URL": {"DATABASE_URL": "mysql://u:p@h/db"},
    "a missing secret": {"JWT_SECRET": "aws-secretsmanager:nothing/here"},
    "a malformed reference": {"JWT_SECRET": "aws-secretsmanager:bad name"},
    "sslmode=disable in production": {
        "ENVIRONMENT": "production",
        "DATABASE_URL": "postgresql://u:p@h/db?sslmode=disable",
    },
    "an example value in staging": {"ENVIRONMENT": "staging", "JWT_SECRET": "changeme"},
    "a short JWT in production": {"ENVIRONMENT": "production", "JWT_SECRET": "short"},
    ".env in staging": {"ENVIRONMENT": "staging", "_DOTENV": "JWT_SECRET=whatever-in-dotenv-file\n"},
    "a raw @ in the password, from .env": {
        "DATABASE_URL": "",  # empty: unset, so .env's is read
        "_DOTENV": "DATABASE_URL=postgresql://u:first@second@127.0.0.1:1/db\n",
    },
}


def _both(cli: Cli, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    dotenv = env.pop("_DOTENV", None)
    if dotenv:
        (cli.cwd / ".env").write_text(dotenv)
    return cli("config", "check", "--json", env=env), cli("doctor", "--json", "--timeout", "1", env=env)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CONFIGURATIONS))
def test_doctor_reports_every_problem_config_check_reports(cli: Cli, aws: Aws, case: str) -> None:
    env = {**aws.env, "DATABASE_URL": DB, "JWT_SECRET": JWT, "AWS_REGION": "us-east-1", **CONFIGURATIONS[case]}
    check, doctor = _both(cli, env)
    problems = json.loads(check.stdout)["problems"]
    assert problems, "the case is meant to be a problem"
    checks: list[dict[str, Any]] = json.loads(doctor.stdout)["checks"]
    for problem in problems:
        about = [
            c
            for c in checks
            if c["name"].startswith(problem["variable"] + " ") or c["name"].endswith(": " + problem["variable"])
        ]
        assert about, f"doctor says nothing about {problem['variable']}: {checks}"
        wanted = "fail" if problem["severity"] == "error" else "warn"
        assert any(c["status"] == wanted for c in about), (problem, about)
    errors = any(p["severity"] == "error" for p in problems)
    assert (check.returncode != 0) == errors
    assert doctor.returncode == 1 or not errors  # the doctor may find more (the network), never less
    # Reported once, with the same severity in both (a .env in staging is a warning in both).
    dotenv = [c for c in checks if c["name"] == "configuration: .env"]
    assert len(dotenv) <= 1 and all(c["status"] == "warn" for c in dotenv)
    assert_clean(check)
    assert_clean(doctor)


# -- no raw input in any output -------------------------------------------------------------

ACCEPTED = {"postgresql+psycopg", "postgres"}  # valid shapes: the API, config check and migrate take them
RAW = {
    "postgresql+psycopg": f"postgresql+psycopg://ecomind:{CANARY}@127.0.0.1:1/ecomind",
    "postgres": f"postgres://ecomind:{CANARY}@127.0.0.1:1/ecomind",
    "bad port": f"postgresql://u:{CANARY}@127.0.0.1:notaport/db",
    "bad bracket": f"postgresql://u:{CANARY}@[::1/db",
    "slash in password": f"postgresql://u:{CANARY}/x@127.0.0.1:1/db",
    # Parsers disagree on where these passwords end: urlsplit (the checks) at the last '@' or at a
    # '/', '?' or '#'; SQLAlchemy and libpq (what connects) at the first '@', libpq at a '/' too.
    "raw @ in password": f"postgresql://ecomind:{HEAD}@{TAIL}@127.0.0.1:1/ecomind",
    "digits, raw / in password": f"postgresql://u:1234/{CANARY}@127.0.0.1:1/db",
    "digits, raw ? in password": f"postgresql://u:1234?{CANARY}@127.0.0.1:1/db",
    "raw # in password": f"postgresql://u:{HEAD}#{TAIL}@127.0.0.1:1/db",
    "raw ] in password": f"postgresql://u:{HEAD}]{TAIL}@127.0.0.1:1/db",
    "blank in password": f"postgresql://u:{HEAD} {TAIL}@127.0.0.1:1/db",
    "raw % in password": f"postgresql://u:{HEAD}%zz{TAIL}@127.0.0.1:1/db",
    # Meant: the password up to the last '@'; read by every parser: the host PIECE.
    "raw @ then / in password": f"postgresql://ecomind:{HEAD}@{PIECE}/{TAIL}@127.0.0.1:1/ecomind",
    "raw @ then ? in password": f"postgresql://ecomind:{HEAD}@{PIECE}?{TAIL}@127.0.0.1:1/ecomind",
    "raw @ then # in password": f"postgresql://ecomind:{HEAD}@{PIECE}#{TAIL}@127.0.0.1:1/ecomind",
    "raw @ then : and / in password": f"postgresql://ecomind:{HEAD}@{PIECE}:99/{TAIL}@127.0.0.1:1/ecomind",
    "mysql": f"mysql://u:{CANARY}@h/db",
    "http": f"http://u:{CANARY}@h/db",
    "libpq key=value": f"host=127.0.0.1 user=u password={CANARY} dbname=d",
    "bare password": CANARY,
}
COMMANDS: dict[str, tuple[list[str], str | None]] = {
    # command: (arguments, stdin)
    "config check": (["config", "check"], None),
    "config show": (["config", "show"], None),
    "doctor": (["doctor", "--timeout", "1"], None),
    "run": (["run", "--", "true"], None),
    "run --only": (["run", "--only", "DATABASE_URL", "--", "true"], None),
    "migrate": (["migrate"], None),
    "users create-admin": (["users", "create-admin", "--org", "Acme", "--email", "a@acme.io"], "x-strong-P4ssword-9\n"),
}
JSON_COMMANDS = ("config check", "config show", "doctor")


@pytest.mark.slow
@pytest.mark.parametrize("shape", list(RAW))
def test_a_raw_database_url_never_reaches_any_output(cli: Cli, aws: Aws, shape: str) -> None:
    env = {**aws.env, "DATABASE_URL": RAW[shape], "JWT_SECRET": JWT}
    for name, (args, stdin) in COMMANDS.items():
        result = cli(*args, env=env, input=stdin)
        assert_clean(result, HEAD, TAIL, PIECE)
        if shape not in ACCEPTED:
            assert result.returncode != 0, f"{name} accepted {shape}"
        if name in JSON_COMMANDS:
            as_json = cli(*args, "--json", env=env)
            assert_clean(as_json, HEAD, TAIL, PIECE)
            json.loads(as_json.stdout)  # JSON on every path, errors included


@pytest.mark.slow
def test_a_raw_at_sign_in_a_dotenv_password_is_refused_by_every_command_naming_the_fix(cli: Cli, aws: Aws) -> None:
    (cli.cwd / ".env").write_text(f"DATABASE_URL={RAW['raw @ in password']}\nJWT_SECRET={JWT}\n")
    for name, (args, stdin) in COMMANDS.items():
        result = cli(*args, env=aws.env, input=stdin)
        assert_clean(result, HEAD, TAIL, PIECE)
        assert result.returncode != 0, f"{name} accepted a password with a raw @"
        if name != "doctor":  # the doctor names the configuration check and its fix: below
            assert "DATABASE_URL" in result.stdout + result.stderr, (name, result.stdout + result.stderr)
    for args in (["config", "check", "--json"], ["doctor", "--json", "--timeout", "1"]):
        result = cli(*args, env=aws.env)
        assert_clean(result, HEAD, TAIL, PIECE)
        text = json.dumps(json.loads(result.stdout))
        assert "DATABASE_URL" in text and ".env" in text and "%40" in text, text


@pytest.mark.slow
@pytest.mark.parametrize("shape", [shape for shape in RAW if shape.startswith("raw @")])
def test_a_url_with_two_raw_at_signs_gets_the_percent_encoding_fix_whatever_stands_between(
    cli: Cli, aws: Aws, shape: str
) -> None:
    env = {**aws.env, "DATABASE_URL": RAW[shape], "JWT_SECRET": JWT}
    for args in (["config", "check", "--json"], ["doctor", "--json", "--timeout", "1"]):
        result = cli(*args, env=env)
        assert_clean(result, HEAD, TAIL, PIECE)
        text = json.dumps(json.loads(result.stdout))
        assert "DATABASE_URL" in text and "'@' as %40" in text, text
        # Not the advice of a URL read at its first '@': no database, a fragment, a host to resolve.
        assert "names no database" not in text and "fragment" not in text and "resolve" not in text, text


@pytest.mark.slow
@pytest.mark.parametrize("shape", list(RAW))
def test_a_raw_database_url_never_reaches_the_api_start_up_log(aws: Aws, shape: str) -> None:
    env = child_env()
    env.update({**aws.env, "DATABASE_URL": RAW[shape], "JWT_SECRET": JWT, "ECOMIND_METRICS_PORT": "0"})
    ran = subprocess.run(
        [sys.executable, "-m", "uvicorn", "app.asgi:app", "--host", "127.0.0.1", "--port", str(free_port())],
        env=env,
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode != 0, "the API started with a database it cannot reach"
    log = ran.stdout + ran.stderr
    assert "DATABASE_URL" in log or "cannot connect to the database" in log, log
    for secret in (CANARY, HEAD, TAIL, PIECE):
        assert secret not in log, f"the API's start-up log holds a secret:\n{log}"


@pytest.mark.slow
@pytest.mark.parametrize("variable", ["REDIS_URL", "JWT_SECRET"])
def test_other_secret_variables_are_scrubbed_too(cli: Cli, aws: Aws, variable: str) -> None:
    value = f"http://u:{CANARY}@cache:6379/0" if variable == "REDIS_URL" else f"{CANARY}:not-a-reference"
    env = {**aws.env, "DATABASE_URL": DB, "JWT_SECRET": JWT, variable: value, "ENVIRONMENT": "staging"}
    for args in (["config", "check"], ["config", "show", "--json"], ["doctor", "--json", "--timeout", "1"]):
        assert_clean(cli(*args, env=env))


def test_json_mode_prints_json_for_usage_errors_too(cli: Cli) -> None:
    result = cli("config", "check", "--json", "--environment", "prod")
    assert result.returncode == 2
    error = json.loads(result.stdout)["error"]
    assert error["kind"] == "usage" and "--environment" in error["message"]
