"""Each validator of `make validate-deploy` passes on the real artifact and fails on a broken copy.

The real artifacts are checked in full by `make validate-deploy` (CI runs it); here every
check runs through deploy/validate.sh on the artifact, then on a copy broken in a way an
operator could plausibly break it, and must fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .rendering import REPO, render

pytestmark = pytest.mark.deploy

VALIDATE = REPO / "deploy" / "validate.sh"


def validate(check: str, *files: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(
        ["bash", str(VALIDATE), check, *map(str, files)], capture_output=True, text=True, env=env, timeout=300
    )


def _seed_event_selectors(text: str) -> str:
    start = text.index("      AdvancedEventSelectors:")
    end = text.index("  DatabaseIngressFromEcsTasks:")
    seed = (
        "      EventSelectors:\n        - ReadWriteType: All\n          IncludeManagementEvents: true\n"
        "          DataResources:\n            - Type: AWS::SecretsManager::Secret\n"
        '              Values: ["arn:aws:secretsmanager:us-east-1:123456789012:secret:ecomind/*"]\n\n'
    )
    return text[:start] + seed + text[end:]


def _grafana_broken(text: str) -> str:
    """A panel whose grid height is written as a string, as a hand edit easily does."""
    dashboard = json.loads(text)
    panel = next(p for p in dashboard["panels"] if p["type"] != "row")
    panel["gridPos"]["h"] = str(panel["gridPos"]["h"])
    return json.dumps(dashboard, indent=2)


def _ecs_broken(text: str) -> str:
    doc = json.loads(text)
    doc["containerDefinitions"][0]["secrets"] = [{"name": "DATABASE_URL", "valueForm": "ecomind/prod/database"}]
    return json.dumps(doc)


CASES: dict[str, tuple[str, Callable[[], str], Callable[[str], str], str]] = {
    # check: (file name, the real artifact, how to break it, what the tool says)
    "hadolint": (
        "Dockerfile",
        lambda: (REPO / "api/Dockerfile").read_text(),
        lambda t: t.replace("FROM python:3.12.8-slim-bookworm", "FROM python:latest"),
        "DL3007",
    ),
    "shellcheck": (
        "deploy.sh",
        lambda: (REPO / "deploy/ecs/deploy.sh").read_text(),
        lambda t: t.replace('--cluster "$cluster"', "--cluster $cluster", 1),
        "SC2086",
    ),
    "compose": (
        "docker-compose.yml",
        lambda: (REPO / "docker-compose.yml").read_text(),
        lambda t: t.replace("condition: service_completed_successfully", "condition: after_migrate"),
        "after_migrate",
    ),
    "ecs": ("api.json", lambda: render("production", "deploy/ecs/migration.taskdef.json"), _ecs_broken, "valueForm"),
    "iam": (
        "policy.json",
        lambda: render("production", "deploy/iam/api-task-role.policy.json"),
        lambda t: t.replace('"secretsmanager:GetSecretValue"', '"secretsmanager:GetSecretValues"'),
        "Unknown action",
    ),
    "cfn": (
        "secrets.yaml",
        lambda: render("production", "deploy/cloudformation/secrets.yaml"),
        _seed_event_selectors,
        "E3030",
    ),
    "cfn-alarms": (
        "alarms.yaml",
        lambda: render("production", "deploy/cloudformation/alarms.yaml"),
        # The generated alarms go through cfn-lint like the rest: a comparison it does not know.
        lambda t: t.replace('"GreaterThanThreshold"', '"GreaterThan"', 1),
        "E3030",
    ),
    "k8s": (
        "production.yaml",
        lambda: render("production", "deploy/k8s"),
        lambda t: t.replace("readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true", 1),
        "readOnlyRootFileSystem",
    ),
    "crds": (
        "production.yaml",
        lambda: render("production", "deploy/k8s"),
        # The version External Secrets stopped serving in v0.17.0: a current cluster refuses it.
        lambda t: t.replace("apiVersion: external-secrets.io/v1\n", "apiVersion: external-secrets.io/v1beta1\n"),
        "is not served by External Secrets",
    ),
    "crds-field": (
        "production.yaml",
        lambda: render("production", "deploy/k8s"),
        lambda t: t.replace("kind: ClusterSecretStore", "kind: ClusterStore"),
        "must be equal to one of the allowed values",
    ),
    "grafana": (
        "secrets.json",
        lambda: (REPO / "deploy/grafana/dashboards/secrets.json").read_text(),
        _grafana_broken,
        "Type 'string' is not assignable to type 'number'",
    ),
    "grafana-options": (
        "secrets.json",
        lambda: (REPO / "deploy/grafana/dashboards/secrets.json").read_text(),
        # A stat panel's text mode outside the enum of Grafana's stat plugin schema.
        lambda t: t.replace('"textMode": "value_and_name"', '"textMode": "valueAndName"', 1),
        "Did you mean '\"value_and_name\"'?",
    ),
    "grafana-field": (
        "secrets.json",
        lambda: (REPO / "deploy/grafana/dashboards/secrets.json").read_text(),
        lambda t: t.replace('"graphTooltip": 1,', '"graphTooltip": 1,\n  "sharedCrosshair": true,', 1),
        "'\"sharedCrosshair\"' does not exist",
    ),
    "checkov": (
        "production.yaml",
        lambda: render("production", "deploy/k8s"),
        lambda t: t.replace("allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true"),
        "CKV_K8S_20",
    ),
}


@pytest.mark.parametrize("check", list(CASES))
def test_validator_passes_the_artifact_and_fails_a_broken_copy(check: str, tmp_path: Path) -> None:
    name, real, breaker, evidence = CASES[check]
    original = real()
    good = tmp_path / "good" / name
    bad = tmp_path / "bad" / name
    good.parent.mkdir()
    bad.parent.mkdir()
    good.write_text(original)
    broken = breaker(original)
    assert broken != original, "the breaking edit did not apply: the test would prove nothing"
    bad.write_text(broken)
    ok = validate(check.split("-")[0], good)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    failed = validate(check.split("-")[0], bad)
    assert failed.returncode != 0, failed.stdout + failed.stderr
    assert evidence in failed.stdout + failed.stderr
