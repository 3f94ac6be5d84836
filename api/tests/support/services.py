"""Real services for the tests and the benchmarks: moto's server, plus the project-local
PostgreSQL and Redis of :mod:`app.data.local`. Test tooling: not shipped in the package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from app.data.local import free_port, port_open, terminate, wait_port

__all__ = ["MotoServer", "free_port", "port_open"]


class MotoServer:
    """moto in server mode (``moto_server``): Secrets Manager over real HTTP."""

    def __init__(self, port: int | None = None, env: dict[str, str] | None = None, *, stock: bool = False) -> None:
        self.port = port or free_port()
        self.env = env or {}  # e.g. INITIAL_NO_AUTH_ACTION_COUNT to enforce IAM
        # moto's own moto_server, unpatched: what an operator gets without tests/support/moto_iam.py.
        self.stock = stock
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        # moto's own server, with IAM's ? and * matched as AWS does (tests/support/moto_iam.py).
        server = (
            [str(Path(sys.executable).with_name("moto_server"))]
            if self.stock
            else [sys.executable, "-m", "tests.support.moto_iam"]
        )
        self.proc = subprocess.Popen(
            [*server, "-H", "127.0.0.1", "-p", str(self.port)],
            cwd=Path(__file__).resolve().parents[2],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **self.env},
        )
        wait_port("127.0.0.1", self.port)
        return self

    def configure(self, config: dict[str, object]) -> None:
        """moto's own settings, e.g. {"lambda": {"use_docker": False}} (functions answer without running)."""
        request = urllib.request.Request(f"{self.url}/moto-api/config", data=json.dumps(config).encode(), method="POST")
        urllib.request.urlopen(request, timeout=10).close()

    def reset(self) -> None:
        # The URL is always http://127.0.0.1:<port>, built above.
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None
