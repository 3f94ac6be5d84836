"""`ecomind dev` (what `make run` runs): a second copy beside a running one, and start-up failures
said in one line with the fix and the documented exit code."""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.data.local import port_open, terminate
from app.telemetry import METRICS_PORT

from ..conftest import CANARY, ECOMIND, Cli, Database, assert_clean
from ..support.environment import child_env
from ..support.polling import still_running, wait_until
from ..support.services import free_port

pytestmark = pytest.mark.slow

JWT = "jwt-secret-for-dev-tests-" + "d" * 32
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def project(database: Database, cli: Cli) -> Cli:
    """A folder whose .env points at the test's PostgreSQL (no Redis: the API runs without it)."""
    (cli.cwd / ".env").write_text(f"DATABASE_URL={database.url()}\nJWT_SECRET={JWT}\n")
    return cli


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port something else listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def _serve(cwd: Path, port: int) -> subprocess.Popen[bytes]:
    env = child_env()
    return subprocess.Popen(
        [ECOMIND, "dev", "--port", str(port), "--data-dir", str(cwd / ".data")],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_second_copy_on_another_port_serves_beside_the_first(project: Cli) -> None:
    first, second = free_port(), free_port()
    copies = [_serve(project.cwd, port) for port in (first, second)]
    try:
        wait_until(
            lambda: all(map(still_running, copies)) and all(port_open("127.0.0.1", p) for p in (first, second)),
            120,
            "both copies serving",
        )
        for port in (first, second):
            assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
            # Each serves its metrics on a port of its own, moved with the API's (9464 for 8000).
            metrics = METRICS_PORT + port - 8000
            assert "ecomind_" in httpx.get(f"http://127.0.0.1:{metrics}/metrics", timeout=10).text
    finally:
        for proc in copies:
            terminate(proc)  # type: ignore[arg-type]


def test_a_copy_on_a_port_in_use_names_the_variable_to_change_in_one_line(cli: Cli, taken_port: int) -> None:
    result = cli("dev", "--port", str(taken_port), "--data-dir", str(cli.cwd / ".data"))
    assert result.returncode == 3, result.stdout + result.stderr
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert lines[0] == f"error: port {taken_port} is in use on 127.0.0.1 (another `make run`?)", lines
    assert lines[1].startswith("  fix: PORT=") and "make run" in lines[1], lines
    assert not (cli.cwd / ".env").exists()  # nothing was started or written first
    assert_clean(result)


def test_a_metrics_port_in_use_stops_the_start_in_one_line_with_the_fix(project: Cli, taken_port: int) -> None:
    result = project(
        "dev",
        "--port",
        str(free_port()),
        "--data-dir",
        str(project.cwd / ".data"),
        env={"ECOMIND_METRICS_PORT": str(taken_port)},
        timeout=120,
    )
    assert result.returncode == 3, result.stdout + result.stderr  # the configuration cannot be used
    said = [x for x in (result.stdout + result.stderr).splitlines() if f"127.0.0.1:{taken_port}" in x]
    assert len(said) == 1 and "cannot start" in said[0], said
    assert "fix: set ECOMIND_METRICS_PORT to a free port" in said[0]
    assert_clean(result)


# -- the project's PostgreSQL, shared by the copies of one folder -------------------------------


def _serving(proc: subprocess.Popen[bytes], port: int) -> None:
    wait_until(lambda: still_running(proc) and port_open("127.0.0.1", port), 120, "the copy serving")
    wait_until(
        lambda: httpx.get(f"http://127.0.0.1:{port}/ready", timeout=10).status_code == 200, 120, "the copy ready"
    )


class _Logged:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc, self.log = proc, log

    def stop(self) -> str:
        terminate(self.proc)  # type: ignore[arg-type]
        return self.log.read_text()


def _serve_logged(cwd: Path, port: int) -> _Logged:
    env = child_env()
    log = cwd / f"dev-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [ECOMIND, "dev", "--port", str(port), "--data-dir", str(cwd / ".data")],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return _Logged(proc, log)


def _env_file(cwd: Path, password: str, db_port: int) -> None:
    (cwd / ".env").write_text(
        f"DATABASE_URL=postgresql://ecomind:{password}@127.0.0.1:{db_port}/ecomind\nJWT_SECRET={JWT}\n"
    )


def _logs_in(password: str, db_port: int) -> bool:
    import psycopg

    try:
        psycopg.connect(
            host="127.0.0.1", port=db_port, user="ecomind", password=password, dbname="ecomind", connect_timeout=5
        ).close()
    except psycopg.OperationalError:
        return False
    return True


def test_a_second_copy_with_another_password_stops_and_leaves_the_first_copys_password(cli: Cli) -> None:
    first_password, other_password = f"{CANARY}-first", f"{CANARY}-other"
    db_port, first_port, second_port = free_port(), free_port(), free_port()
    _env_file(cli.cwd, first_password, db_port)
    first = _serve(cli.cwd, first_port)
    try:
        _serving(first, first_port)
        # Another .env in the same folder (edited, or written anew): its password is not the role's.
        _env_file(cli.cwd, other_password, db_port)
        second = cli("dev", "--port", str(second_port), "--data-dir", str(cli.cwd / ".data"), timeout=120)
        assert second.returncode == 7, second.stdout + second.stderr
        lines = [x for x in second.stderr.splitlines() if x.strip()]
        assert len(lines) == 2 and "refuses the password of DATABASE_URL (from .env)" in lines[0], lines
        assert lines[1].startswith(f"  fix: PORT={second_port} make run   # once the other make run is stopped")
        assert_clean(second, first_password, other_password)
        # The first copy still logs in with its password, and serves.
        assert _logs_in(first_password, db_port) and not _logs_in(other_password, db_port)
        assert httpx.get(f"http://127.0.0.1:{first_port}/ready", timeout=10).status_code == 200
    finally:
        terminate(first)  # type: ignore[arg-type]
    # The fix, once the first copy is stopped: this copy starts the PostgreSQL and says it gave
    # the role the password of its .env.
    again = _serve_logged(cli.cwd, second_port)
    try:
        _serving(again.proc, second_port)
        assert _logs_in(other_password, db_port)
    finally:
        said = again.stop()
    assert "the role ecomind had another password (an earlier .env's)" in said, said
    assert first_password not in said and other_password not in said


def test_after_init_force_a_second_copy_stops_and_the_first_keeps_serving(cli: Cli) -> None:
    first_password, db_port, first_port, second_port = f"{CANARY}-first", free_port(), free_port(), free_port()
    _env_file(cli.cwd, first_password, db_port)
    first = _serve(cli.cwd, first_port)
    try:
        _serving(first, first_port)
        written = cli("init", "--force", "--example", str(REPO / ".env.example"))
        assert written.returncode == 0, written.stdout + written.stderr
        second = cli("dev", "--port", str(second_port), "--data-dir", str(cli.cwd / ".data"), timeout=120)
        assert second.returncode == 7, second.stdout + second.stderr
        assert "runs on 127.0.0.1:" in second.stderr or "refuses the password" in second.stderr, second.stderr
        assert "fix: PORT=" in second.stderr
        assert_clean(second, first_password)
        assert _logs_in(first_password, db_port)
        assert httpx.get(f"http://127.0.0.1:{first_port}/ready", timeout=10).status_code == 200
    finally:
        terminate(first)  # type: ignore[arg-type]


def test_the_documented_master_url_of_make_runs_postgresql_logs_in_as_its_superuser() -> None:
    import psycopg

    found = re.search(r"<!-- make run master url -->\n```bash\n(.*?)```", (REPO / "docs/secrets.md").read_text(), re.S)
    assert found, "docs/secrets.md no longer says where make run's master URL comes from"
    # A clone the postgres user can reach (as root, the data would otherwise move out of it).
    clone = Path(tempfile.mkdtemp(prefix="ecomind-clone-", dir="/tmp"))
    os.chmod(clone, 0o755)
    home = clone / "home"
    home.mkdir()
    db_port, port = free_port(), free_port()
    _env_file(clone, f"{CANARY}-dev", db_port)
    server = _serve_logged(clone, port)
    try:
        _serving(server.proc, port)
        env = {"PATH": os.environ["PATH"], "HOME": str(home), "PGPORT": str(db_port)}
        ran = subprocess.run(["bash", "-euo", "pipefail", "-c", found.group(1)], cwd=clone, env=env, timeout=60)
        assert ran.returncode == 0
        master = home / ".pg-master-url"
        assert stat.S_IMODE(master.stat().st_mode) == 0o600
        with psycopg.connect(master.read_text().strip(), connect_timeout=5) as conn:
            assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (True,)
    finally:
        said = server.stop()
        shutil.rmtree(clone, ignore_errors=True)
    assert "data in" in said and CANARY not in said
