"""deploy/ecs/deploy.sh in --dry-run: the calls, their order, and the migration's exit code."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "deploy/ecs/deploy.sh"


def dry_run(env: str, exit_code: str = "0") -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "DRY_RUN_MIGRATION_EXIT_CODE": exit_code}
    return subprocess.run(
        ["bash", str(SCRIPT), env, "--dry-run"], capture_output=True, text=True, env=environ, timeout=60
    )


def calls(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line.split()[3] + " " + line.split()[4] for line in result.stderr.splitlines() if line.startswith("aws ")]


@pytest.mark.slow
def test_dry_run_prints_the_calls_in_order() -> None:
    result = dry_run("staging")
    assert result.returncode == 0, result.stderr
    assert calls(result) == [
        "ecs register-task-definition",
        "ecs register-task-definition",
        "ecs run-task",
        "ecs wait",
        "ecs describe-tasks",
        "ecs update-service",
        "ecs wait",
    ]
    assert "tasks-stopped" in result.stderr and "services-stable" in result.stderr
    assert "exitCode" in result.stderr


@pytest.mark.slow
def test_a_failed_migration_stops_the_deploy() -> None:
    result = dry_run("production", exit_code="3")
    assert result.returncode == 1
    assert "the migration task exited with '3'; the API was not updated" in result.stderr
    assert "update-service" not in result.stderr


def test_bad_arguments() -> None:
    for args in ([], ["qa"], ["staging", "--force"]):
        result = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=30)
        assert result.returncode == 2
    assert "Usage" in subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True).stdout
