from __future__ import annotations

import configparser
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from ..conftest import Database, assert_clean, migrate

API = Path(__file__).resolve().parents[2]


def head() -> str:
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory(str(API / "alembic")).get_current_head())


def tables(db: Database) -> set[str]:
    with psycopg.connect(db.url()) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {r[0] for r in rows}


def test_alembic_ini_holds_no_url_or_credential() -> None:
    parser = configparser.ConfigParser()
    parser.read(API / "alembic.ini")
    assert "sqlalchemy.url" not in parser["alembic"]
    assert "postgresql://" not in (API / "alembic.ini").read_text()


@pytest.mark.slow
def test_upgrade_to_head_and_back_to_base(database: Database) -> None:
    up = migrate(database.url())
    assert up.returncode == 0, up.stderr
    assert {"orgs", "users", "usage_events", "audit_events", "revoked_tokens", "alembic_version"} <= tables(database)
    down = migrate(database.url(), "downgrade", "base")
    assert down.returncode == 0, down.stderr
    assert tables(database) == {"alembic_version"}
    assert_clean(up, database.password)
    assert_clean(down, database.password)


@pytest.mark.slow
def test_five_concurrent_runners_all_succeed_and_one_applies(database: Database) -> None:
    with ThreadPoolExecutor(5) as pool:
        results = list(pool.map(lambda _: migrate(database.url()), range(5)))
    assert [r.returncode for r in results] == [0] * 5, [r.stderr for r in results]
    applied = [r for r in results if "Running upgrade  -> 0001" in r.stderr]
    assert len(applied) == 1
    with psycopg.connect(database.url()) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(head(),)]


@pytest.mark.slow
def test_run_migrations_script_passes_arguments_and_fails_loudly(database: Database) -> None:
    script = API / "scripts" / "run_migrations.sh"
    assert "set -euo pipefail" in script.read_text()
    import os
    import sys

    env = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "DATABASE_URL": database.url()}
    ok = subprocess.run([str(script), "upgrade", "head"], env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    env["DATABASE_URL"] = database.url("wrong-password")
    bad = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0
    assert "password authentication failed" in bad.stderr
    assert_clean(bad, database.password)
