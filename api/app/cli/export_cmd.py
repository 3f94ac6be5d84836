"""``ecomind export``: print the resolved settings once, as dotenv lines or JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..secrets.environment import VARIABLE_NAMES
from .options import EnvFileOpt, EnvironmentOpt, value_of
from .output import ExitCode, fail, set_json_mode
from .run_cmd import child_environment, only_secrets

__all__ = ["export"]


def _dotenv_line(name: str, value: str) -> str:
    # Single quotes: python-dotenv and docker compose read them literally (no ${} expansion).
    if "'" not in value and "\n" not in value:
        return f"{name}='{value}'"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{name}="{escaped}"'


def export(
    environment: EnvironmentOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="dotenv or json.")] = "dotenv",
    only: Annotated[list[str] | None, typer.Option("--only", help="Export only this variable (repeatable).")] = None,
    env_file: EnvFileOpt = Path(".env"),
) -> None:
    """Print the resolved settings once, as dotenv lines or JSON: values included, on purpose.

    For a one-off (a local shell against staging, a tool that reads .env). Prefer
    `ecomind run`, which gives the values to one command without printing them.

    Example: ecomind export --environment staging --only DATABASE_URL --format dotenv > /dev/shm/staging.env
    """
    set_json_mode(fmt == "json")  # errors too are JSON then
    if fmt not in ("dotenv", "json"):
        fail("--format is dotenv or json", ExitCode.USAGE)
    from ..settings import load_settings

    secrets = only_secrets(only)
    settings = load_settings(environment=value_of(environment), env_file=env_file, secrets=secrets)
    try:
        values = {n: v for n, v in child_environment(settings, only, {}).items() if n in (only or VARIABLE_NAMES)}
    finally:
        settings.close()
    if fmt == "json":
        sys.stdout.write(json.dumps(values, indent=2) + "\n")
    else:
        sys.stdout.write("".join(_dotenv_line(n, v) + "\n" for n, v in values.items()))
