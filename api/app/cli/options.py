"""Options that several commands share, defined once."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from app.secrets.environment import DEPLOYED, ENVIRONMENTS

__all__ = ["DeployedOpt", "EnvFileOpt", "EnvironmentOpt", "JsonOpt", "RegionOpt", "value_of"]

EnvironmentName = Enum("EnvironmentName", {name: name for name in ENVIRONMENTS}, type=str)  # type: ignore[misc]
DeployedName = Enum("DeployedName", {name: name for name in DEPLOYED}, type=str)  # type: ignore[misc]

EnvironmentOpt = Annotated[
    EnvironmentName | None,
    typer.Option(
        "--environment", "-e", help="development, staging or production; overrides ENVIRONMENT.", case_sensitive=False
    ),
]
DeployedOpt = Annotated[
    DeployedName | None,
    typer.Option("--environment", "-e", help="staging or production; default: ENVIRONMENT.", case_sensitive=False),
]


def _existing_env_file(value: Path) -> Path:
    # The default .env may be absent (staging, production, a fresh clone); a file asked for by name may not.
    if value != Path(".env") and not value.is_file():
        raise typer.BadParameter(f"{value} is not a file", param_hint="--env-file")
    return value


EnvFileOpt = Annotated[
    Path, typer.Option("--env-file", help="The .env file read in development.", callback=_existing_env_file)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON document on stdout, errors included.")]
RegionOpt = Annotated[str | None, typer.Option("--region", help="AWS region; default: AWS_REGION.")]


def value_of(option: Enum | None) -> str | None:
    """The plain value of an --environment option (None when not given)."""
    return None if option is None else str(option.value)
