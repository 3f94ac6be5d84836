"""`ecomind local-postgres`: the rehearsal's PostgreSQL with SSL, apart from `make run`'s, and the
fix that names it when a database on this machine refuses the SSL staging requires."""

from __future__ import annotations

import json
import os
import shlex
import signal
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from app.data.local import port_open

from ..conftest import CANARY, ECOMIND, Cli, Database, assert_clean
from ..support.environment import child_env
from ..support.services import free_port

pytestmark = pytest.mark.slow


class Started:
    """`ecomind local-postgres` running in a folder of its own; ``exports`` is what it printed."""

    def __init__(self, cwd: Path, *args: str) -> None:
        env = child_env()
        self.proc = subprocess.Popen(
            [ECOMIND, "local-postgres", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.printed: list[str] = []
        self.exports: dict[str, str] = {}
        assert self.proc.stdout is not None
        while "MASTER_URL_FILE" not in self.exports:
            line = self.proc.stdout.readline()
            assert line, "it stopped before printing what to export:\n" + "".join(self.printed)
            self.printed.append(line)
            if not line.startswith("#"):
                assert line.startswith("export "), line
                self.exports.update(word.split("=", 1) for word in shlex.split(line)[1:])

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[tuple[Started, int]]:
    port = free_port()
    server = Started(tmp_path, "--port", str(port))
    yield server, port
    server.stop()


def test_it_serves_ssl_on_its_port_and_prints_the_variables_of_the_rehearsal(started: tuple[Started, int]) -> None:
    server, port = started
    exports = server.exports
    assert exports["DB_HOST"] == "127.0.0.1" and exports["DB_PORT"] == str(port)
    assert exports["MASTER_URL"] == f"postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=require"
    # MASTER_URL holds no password: psql (and libpq) read it from PGPASSFILE, as section 4 runs.
    with psycopg.connect(exports["MASTER_URL"], passfile=exports["PGPASSFILE"]) as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)
        assert conn.execute("SELECT current_setting('password_encryption')").fetchone() == ("scram-sha-256",)
    # MASTER_URL_FILE: the whole URL, as `secrets rotate --local --master-url-file` reads it.
    master_file = Path(exports["MASTER_URL_FILE"])
    with psycopg.connect(master_file.read_text().strip()) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
    secret = master_file.read_text().strip().split(":")[2].split("@")[0]
    for path in (master_file, Path(exports["PGPASSFILE"])):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert secret not in "".join(server.printed), "the superuser's password was printed"
    # Without the password, the server says no: it checks passwords, as RDS does.
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(exports["MASTER_URL"], passfile=os.devnull, connect_timeout=5).close()
    server.stop()
    assert not port_open("127.0.0.1", port), "the server outlived the command"


def test_started_again_it_serves_the_same_data_with_the_same_password(tmp_path: Path) -> None:
    port = free_port()
    first = Started(tmp_path, "--port", str(port))
    with psycopg.connect(first.exports["MASTER_URL"], passfile=first.exports["PGPASSFILE"], autocommit=True) as conn:
        conn.execute("CREATE DATABASE kept")
    first.stop()
    again = Started(tmp_path, "--port", str(port))
    try:
        assert again.exports == first.exports
        url = again.exports["MASTER_URL"].replace("/postgres?", "/kept?")
        psycopg.connect(url, passfile=again.exports["PGPASSFILE"]).close()
    finally:
        again.stop()


def test_a_port_in_use_is_refused_with_a_free_one(cli: Cli, started: tuple[Started, int]) -> None:
    _, port = started
    result = cli("local-postgres", "--port", str(port))
    assert result.returncode == 3, result.stdout + result.stderr
    assert f"port {port} is in use" in result.stderr
    fix = result.stderr.split("fix: ", 1)[1].strip()
    assert fix.startswith("ecomind local-postgres --port ") and fix != f"ecomind local-postgres --port {port}"


def test_make_runs_data_folder_is_refused(cli: Cli) -> None:
    result = cli("local-postgres", "--port", str(free_port()), "--data-dir", ".data/postgres")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "make run's PostgreSQL" in result.stderr and "--data-dir .data/rehearsal-postgres" in result.stderr
    assert not (cli.cwd / ".data").exists()


def test_a_database_on_this_machine_without_ssl_gets_the_fix_that_starts_one_with_it(
    cli: Cli, database: Database
) -> None:
    # Staging adds sslmode=require; the tests' PostgreSQL, like make run's, has no SSL.
    env = {"ENVIRONMENT": "staging", "DATABASE_URL": database.url()}
    result = cli("migrate", env=env)
    assert result.returncode == 7, result.stdout + result.stderr
    assert "refused SSL" in result.stderr
    assert "RDS" not in result.stderr
    fix = result.stderr.split("fix: ", 1)[1].strip()
    assert fix.startswith("ecomind local-postgres --port ")
    assert_clean(result, CANARY)
    # The fix runs as printed, in bash: a server with SSL starts (in the foreground; stopped once up).
    port = int(fix.split("#", 1)[0].split()[-1])
    if port_open("127.0.0.1", port):
        pytest.skip(f"port {port} is taken on this machine: the printed command would name a free one")
    ran = subprocess.Popen(
        ["bash", "-c", fix],
        cwd=cli.cwd,
        env={"PATH": f"{Path(ECOMIND).parent}:{os.environ['PATH']}", "HOME": os.environ.get("HOME", "/")},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert ran.stdout is not None
        assert ran.stdout.readline().startswith("# PostgreSQL with SSL"), "the printed fix did not start a server"
    finally:
        os.killpg(ran.pid, signal.SIGTERM)
        ran.wait(timeout=60)
    assert not port_open("127.0.0.1", port)


def test_a_remote_database_without_ssl_keeps_the_fix_of_rds() -> None:
    from app.cli.postgres_cmd import ssl_fix

    assert "RDS has it" in ssl_fix("db.example.internal", "staging")
    assert "ecomind local-postgres" in ssl_fix("127.0.0.1") and "ecomind local-postgres" in ssl_fix("localhost")


def test_the_doctor_gives_a_database_on_this_machine_without_ssl_the_fix_that_starts_one(
    cli: Cli, database: Database
) -> None:
    env = {"ENVIRONMENT": "staging", "DATABASE_URL": database.url(), "JWT_SECRET": "k" * 48}
    result = cli("doctor", "--json", "--only", "DATABASE_URL", env=env)
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    login = next(c for name, c in checks.items() if name.startswith("database") and c["status"] == "fail")
    assert "SSL" in login["detail"], login
    assert login["fix"].startswith("ecomind local-postgres --port "), login
    assert_clean(result, CANARY)
