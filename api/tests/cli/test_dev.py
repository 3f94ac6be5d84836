"""`ecomind dev` (what `make run` runs): a second copy beside a running one, and start-up failures
said in one line with the fix and the documented exit code."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.localdb import port_open, terminate
from app.telemetry import METRICS_PORT

from ..conftest import ECOMIND, Cli, Database, assert_clean
from ..support.services import free_port

JWT = "jwt-secret-for-dev-tests-" + "d" * 32


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
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
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
        deadline = time.monotonic() + 120
        while not (port_open("127.0.0.1", first) and port_open("127.0.0.1", second)):
            assert all(p.poll() is None for p in copies), "a copy stopped"
            assert time.monotonic() < deadline, "the copies did not both serve"
            time.sleep(0.2)
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
