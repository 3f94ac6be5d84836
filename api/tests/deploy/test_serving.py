"""Every server of the API runs uvicorn with app.api.serving's flags: the image's CMD, and the ECS
task definition and the Kubernetes Deployment, which run that CMD as it is. (`ecomind dev`
passes the same options: tests/api/test_abuse.py starts it and sees a half-open connection closed.)
"""

from __future__ import annotations

import json

import pytest
import yaml
from uvicorn.config import Config

from app.api.serving import UVICORN_FLAGS, UVICORN_OPTIONS
from app.secrets.environment import DEPLOYED

from .rendering import REPO, render


def test_the_image_runs_uvicorn_with_the_serving_flags() -> None:
    line = next(x for x in (REPO / "api/Dockerfile").read_text().splitlines() if x.startswith("CMD "))
    command = json.loads(line[4:])
    assert command[:2] == ["uvicorn", "app.asgi:app"]
    flags = command[2:]
    starts = [i for i in range(len(flags)) if tuple(flags[i : i + len(UVICORN_FLAGS)]) == UVICORN_FLAGS]
    assert starts, f"the CMD lacks {UVICORN_FLAGS}: {command}"


@pytest.mark.parametrize("env", DEPLOYED)
def test_ecs_and_kubernetes_run_the_image_command_unchanged(env: str) -> None:
    container = json.loads(render(env, "deploy/ecs/api.taskdef.json"))["containerDefinitions"][0]
    assert not {"command", "entryPoint"} & set(container), container.get("command")
    deployments = [d for d in yaml.safe_load_all(render(env, "deploy/k8s")) if d and d["kind"] == "Deployment"]
    assert deployments
    for deployment in deployments:
        [api] = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "api"]
        assert not {"command", "args"} & set(api), api


def test_the_serving_options_turn_websockets_off_whatever_library_is_installed() -> None:
    async def app(scope: object, receive: object, send: object) -> None:  # the options are what is checked
        pass

    config = Config(app, **UVICORN_OPTIONS)  # type: ignore[arg-type]
    config.load()
    assert config.ws == "none" and config.ws_protocol_class is None
    assert "--ws" in UVICORN_FLAGS  # so the image's CMD carries it (the test above), and ecomind dev
