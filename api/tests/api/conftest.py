"""Fixtures for the API tests: a migrated database, a clean Redis, the API under uvicorn."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from app.data.local import LocalRedis, port_open, terminate

from ..conftest import CANARY
from ..support.environment import child_env
from ..support.polling import wait_until
from ..support.services import free_port


@pytest.fixture
def redis_url(redis_server: Any) -> str:
    """The session's Redis, emptied: login counters must not leak from one test into the next."""
    url = f"redis://127.0.0.1:{redis_server.port}/0"
    with redis.Redis.from_url(url) as client:
        client.flushall()
    return url


@pytest.fixture
def private_redis() -> Iterator[LocalRedis]:
    """A Redis of this test's own, to stop and restart."""
    server = LocalRedis(free_port()).start()
    yield server
    server.stop()


class LiveApi:
    """``uvicorn app.asgi:app`` in a child process, as `make run` serves it, on a free port."""

    def __init__(self, env: Mapping[str, str], command: list[str] | None = None) -> None:
        self.port = free_port()
        self.env = env
        # uvicorn's arguments after the app (host and port are added); default: none.
        self.command = command or []
        self.log = Path(tempfile.mkstemp(prefix="ecomind-api-", suffix=".log")[1])
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveApi:
        # ECOMIND_METRICS_PORT: 0 from tests/conftest.py, so two APIs of one test both start.
        base = child_env(keep=("PATH", "HOME", "LANG", "ECOMIND_METRICS_PORT"))
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "uvicorn", "app.asgi:app", "--host", "127.0.0.1", "--port", str(self.port)),
                    *self.command,
                ],
                env={**base, **self.env},
                cwd=tempfile.gettempdir(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        proc = self.proc

        def serving() -> bool:
            assert proc.poll() is None, f"the API stopped:\n{self.output()}"
            return port_open("127.0.0.1", self.port)

        wait_until(serving, 60, "the API serving")
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        terminate(self.proc)
        text = self.output()
        self.log.unlink(missing_ok=True)
        assert CANARY not in text, "the API printed a secret"

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, **kwargs)


@pytest.fixture
def live_api() -> Iterator[Any]:
    """Call with the environment; the API is stopped (and its output checked) after the test."""
    started: list[LiveApi] = []

    def start(env: Mapping[str, str], command: list[str] | None = None) -> LiveApi:
        api = LiveApi(env, command).start()
        started.append(api)
        return api

    yield start
    for api in started:
        api.stop()
