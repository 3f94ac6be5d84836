"""One truth: secret names, JSON keys and variables agree across the code and every artifact.

The settings contract (app.settings, app.secrets.dburl) is the reference. Renaming a
secret, a key or a variable in one place and not the others fails here.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.cli.inventory import ROTATION_DAYS  # what `ecomind secrets provision` and the doctor apply
from app.settings import DEFAULT_PREFIXES, VARIABLES

REPO = Path(__file__).resolve().parents[3]
ENVIRONMENTS = ("staging", "production")
RDS_KEYS = {"engine", "host", "port", "dbname", "username", "password"}  # dburl.parse_database_secret
COMPOSE_ONLY = {"POSTGRES_PASSWORD"}  # read by docker compose, not by the app


class _CfnLoader(yaml.SafeLoader):
    pass


_CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: {suffix: _construct(loader, node)})


def _construct(loader: yaml.Loader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]


def render(env: str, template: str) -> Any:
    out = subprocess.run(
        [sys.executable, str(REPO / "deploy/render.py"), env, str(REPO / template)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


def params(env: str) -> dict[str, str]:
    lines = (REPO / f"deploy/environments/{env}.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_parameters_use_the_default_prefix(env: str) -> None:
    assert params(env)["SECRETS_PREFIX"] == DEFAULT_PREFIXES[env]  # type: ignore[index]
    assert params(env)["ENVIRONMENT"] == env


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_ecs_task_definitions(env: str) -> None:
    prefix = DEFAULT_PREFIXES[env]  # type: ignore[index]
    api = render(env, "deploy/ecs/api.taskdef.json")["containerDefinitions"][0]
    environment = {e["name"]: e["value"] for e in api["environment"]}
    assert set(environment) <= set(VARIABLES)
    assert environment["DATABASE_URL"] == f"aws-secretsmanager:{prefix}/database"
    assert environment["JWT_SECRET"] == f"aws-secretsmanager:{prefix}/jwt"
    assert environment["ENVIRONMENT"] == env
    migration = render(env, "deploy/ecs/migration.taskdef.json")["containerDefinitions"][0]
    [secret] = migration["secrets"]
    assert secret["name"] == "DATABASE_URL" and secret["name"] in VARIABLES
    assert secret["valueFrom"].endswith(f":secret:{prefix}/database")  # whole JSON: the app builds the URL
    assert {e["name"] for e in migration["environment"]} <= set(VARIABLES)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_iam_policies_name_exactly_the_secrets_used(env: str) -> None:
    prefix = DEFAULT_PREFIXES[env]  # type: ignore[index]

    def secret_resources(policy: dict[str, Any]) -> set[str]:
        found: set[str] = set()
        for statement in policy["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if "secretsmanager:GetSecretValue" in actions:
                resources = statement["Resource"]
                found |= {resources} if isinstance(resources, str) else set(resources)
        return {r.split(":secret:")[1] for r in found}

    assert secret_resources(render(env, "deploy/iam/api-task-role.policy.json")) == {
        f"{prefix}/database-??????",
        f"{prefix}/jwt-??????",
    }
    # The execution role injects only what the migration task definition injects.
    assert secret_resources(render(env, "deploy/iam/execution-role.policy.json")) == {f"{prefix}/database-??????"}
    assert secret_resources(render(env, "deploy/iam/migration-task-role.policy.json")) == {f"{prefix}/database-??????"}
    assert secret_resources(render(env, "deploy/iam/rotation-lambda-role.policy.json")) == {
        f"{prefix}/database-??????",
        f"{prefix}/jwt-??????",
    }


def test_cloudformation_secrets_match_the_contract() -> None:
    template = yaml.load((REPO / "deploy/cloudformation/secrets.yaml").read_text(), Loader=_CfnLoader)
    settings = template["Mappings"]["Settings"]
    for env in ENVIRONMENTS:
        assert settings[env]["Prefix"] == DEFAULT_PREFIXES[env]  # type: ignore[index]
        assert settings[env]["RotationDays"] == ROTATION_DAYS[env]
    resources = template["Resources"]
    assert resources["DatabaseSecret"]["Properties"]["Name"]["Sub"][0] == "${Prefix}/database"
    assert resources["JwtSecret"]["Properties"]["Name"]["Sub"][0] == "${Prefix}/jwt"
    generated = resources["DatabaseSecret"]["Properties"]["GenerateSecretString"]
    template_json = re.sub(r"\$\{(\w+)\}", r"\1", generated["SecretStringTemplate"]["Sub"])
    keys = set(json.loads(template_json)) | {generated["GenerateStringKey"]}
    assert keys == RDS_KEYS


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_kubernetes_overlays(env: str) -> None:
    prefix = DEFAULT_PREFIXES[env]  # type: ignore[index]
    out = subprocess.run(
        ["kubectl", "kustomize", str(REPO / f"deploy/k8s/overlays/{env}")], capture_output=True, text=True, check=True
    ).stdout
    docs = {d["kind"]: d for d in yaml.safe_load_all(out)}
    assert docs["ExternalSecret"]["spec"]["data"][0]["remoteRef"]["key"] == f"{prefix}/database"
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    for container in pod["containers"] + pod["initContainers"]:
        environment = {e["name"]: e["value"] for e in container["env"]}
        assert set(environment) <= set(VARIABLES)
        assert environment["ENVIRONMENT"] == env
        assert environment["DATABASE_URL"].startswith("file:/run/secrets/ecomind/")
    api = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert api["SECRETS_PREFIX"] == prefix


def test_compose_and_env_example() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    for name in ("migrate", "api"):
        service = compose["services"][name]
        assert service["env_file"] == [".env"]
        assert set(service["environment"]) <= set(VARIABLES)
    assert "POSTGRES_PASSWORD" in compose["services"]["postgres"]["environment"]
    assert "${POSTGRES_PASSWORD" in compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
    example = (REPO / ".env.example").read_text().splitlines()
    names = {line.split("=", 1)[0] for line in example if line and not line.startswith("#")}
    assert names <= set(VARIABLES) | COMPOSE_ONLY
    assert {"DATABASE_URL", "JWT_SECRET"} <= names
