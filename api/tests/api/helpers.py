"""Build the API in-process (full lifespan) against real PostgreSQL, Redis and moto."""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from fastapi.testclient import TestClient

from app.main import create_app
from app.settings.knobs import Tuning
from app.settings.loading import load_settings

from ..conftest import ECOMIND
from ..support.environment import child_env

REPO = Path(__file__).resolve().parents[3]
OWNER_PASSWORD = "owner-password-123"
JWT = "jwt-secret-for-tests-" + "x" * 32


def client(env: Mapping[str, str], tuning: Tuning | None = None) -> TestClient:
    """The app in-process; ``tuning`` defaults to the shipped defaults (not this process's environment),
    with the metrics listener on a free port (``app.state.metrics_port``)."""
    chosen = tuning or Tuning()
    if chosen.metrics_port == Tuning().metrics_port:
        chosen = chosen.model_copy(update={"metrics_port": 0})
    app = create_app(load=lambda: load_settings(dict(env), env_file=None), tuning=chosen)
    return TestClient(app)


def create_owner(database_url: str, org: str, email: str, password: str = OWNER_PASSWORD) -> None:
    env = child_env()
    env["DATABASE_URL"] = database_url
    result = subprocess.run(
        [ECOMIND, "users", "create-admin", "--org", org, "--email", email],
        input=password + "\n",
        env=env,
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert password not in result.stdout + result.stderr


def login(api: TestClient, email: str, password: str = OWNER_PASSWORD) -> str:
    response = api.post("/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def shipped_flags() -> list[str]:
    """The flags of the image's uvicorn command (api/Dockerfile's CMD), host and port aside."""
    line = next(x for x in (REPO / "api/Dockerfile").read_text().splitlines() if x.startswith("CMD "))
    command = json.loads(line[4:])
    assert command[:2] == ["uvicorn", "app.asgi:app"]
    flags, rest = [], iter(command[2:])
    for flag in rest:
        if flag in ("--host", "--port"):
            next(rest)
        else:
            flags.append(flag)
    return flags
