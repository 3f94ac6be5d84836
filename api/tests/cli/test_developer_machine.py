"""`make run` on a developer's machine: free ports when 5432 is taken, another PostgreSQL said as
such, data where the server reaches it as root, and the migration script without a PATH."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from app.data.local import LocalPostgres, port_open

from ..conftest import CANARY, ECOMIND, Cli, Database, assert_clean
from ..support.services import free_port

REPO = Path(__file__).resolve().parents[3]
JWT = "k" * 48


# -- the README's migration command, and the script without a PATH --------------------


def test_run_migrations_script_finds_the_venv_without_path(database: Database, tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DATABASE_URL": database.url()}
    result = subprocess.run(
        ["bash", str(REPO / "api/scripts/run_migrations.sh"), "upgrade", "head"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert_clean(result, database.password)
    readme = (REPO / "README.md").read_text()
    assert "-- ./api/scripts/run_migrations.sh" not in readme
    assert (
        "./scripts/run_migrations.sh"
        not in subprocess.run([ECOMIND, "run", "--help"], capture_output=True, text=True).stdout
    )


# -- make run on a developer's machine ---------------------------------------------------


def test_init_points_env_at_free_ports_when_5432_is_taken(cli: Cli, tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        template = (REPO / ".env.example").read_text().replace("127.0.0.1:5432", f"127.0.0.1:{port}")
        (tmp_path / "template").write_text(template)
        result = cli("init", "--example", str(tmp_path / "template"))
    finally:
        taken.close()
    assert result.returncode == 0, result.stderr
    assert f"port {port} is taken" in result.stdout
    url = next(line for line in (cli.cwd / ".env").read_text().splitlines() if line.startswith("DATABASE_URL="))
    assert f":{port}/" not in url


@pytest.mark.slow
def test_dev_against_another_postgresql_says_what_to_do(cli: Cli, postgres: Any) -> None:
    (cli.cwd / ".env").write_text(
        f"DATABASE_URL=postgresql://ecomind:{CANARY}@127.0.0.1:{postgres.port}/ecomind\nJWT_SECRET={JWT}\n"
    )
    result = cli("dev", "--port", str(free_port()), "--data-dir", str(cli.cwd / ".data"), timeout=120)
    assert result.returncode == 7, result.stdout + result.stderr
    assert f"another PostgreSQL (not this project's) listens on 127.0.0.1:{postgres.port}" in result.stderr
    assert "fix: .venv/bin/ecomind init --force" in result.stderr
    assert "migration failed" not in result.stderr
    assert_clean(result)


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="the server runs as postgres only when the tests run as root")
def test_a_private_folder_as_root_puts_the_data_where_postgres_reaches(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    pg = LocalPostgres(private / "clone" / ".data" / "postgres", free_port())
    assert pg.relocated and str(pg.root).startswith("/var/lib/postgresql/ecomind/")
    try:
        pg.start()
        assert port_open("127.0.0.1", pg.port)
    finally:
        pg.stop()
        subprocess.run(["rm", "-rf", str(pg.root)], check=False)
