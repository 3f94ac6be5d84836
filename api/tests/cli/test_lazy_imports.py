"""The CLI imports what a command needs when it runs: `ecomind --help` loads no AWS, database or web stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ..conftest import CANARY, Aws

HEAVY = ("boto3", "botocore", "psycopg", "sqlalchemy", "fastapi", "pydantic", "rich", "uvicorn", "alembic")


def test_importing_the_cli_imports_none_of_the_heavy_libraries() -> None:
    probe = f"import sys, app.cli.main; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "", f"import app.cli.main loaded {loaded}"


def test_help_renders_without_them_either() -> None:
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['ecomind', '--help']\n"
        "try:\n    runpy.run_module('app.cli', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        f"print('LOADED:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout
    assert "Usage: ecomind" in out and out.strip().endswith("LOADED:"), out[-300:]


def test_run_resolves_and_runs_without_the_command_tree(aws: Aws, tmp_path: Path) -> None:
    """`ecomind run` stands in front of every entrypoint: it parses its own options, no typer, no rich."""
    aws.create(
        "ecomind/prod/database",
        json.dumps(
            {
                "engine": "postgres",
                "host": "rds",
                "port": 5432,
                "dbname": "ecomind",
                "username": "app",
                "password": CANARY,
            }
        ),
    )
    aws.create("ecomind/prod/jwt", "k" * 48)
    # ecomind run execs the command: the probe stands in for exec to look at the process before it goes.
    probe = (
        "import os, sys\n"
        "def exec_(file, args, env):\n"
        "    print('JWT=' + str(len(env['JWT_SECRET'])))\n"
        "    raise SystemExit(0)\n"
        "os.execvpe = exec_\n"
        "from app.cli.main import main\n"
        "sys.argv = ['ecomind', 'run', '--', 'true']\n"
        "try:\n    main()\n"
        "except SystemExit as exc:\n    print('EXIT:' + str(exc.code))\n"
        "print('LOADED:' + ','.join(m for m in ('typer', 'rich', 'click') if m in sys.modules))"
    )
    env = {**os.environ, **aws.env, "ENVIRONMENT": "production"}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert "JWT=48" in result.stdout and "EXIT:0" in result.stdout, result.stdout + result.stderr
    assert result.stdout.strip().endswith("LOADED:"), result.stdout
    assert CANARY not in result.stdout + result.stderr
