"""``ecomind run -- CMD ARGS...``: run a command with the resolved settings in its environment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..secrets.environment import SECRET_VARIABLES, VARIABLE_NAMES
from ..settings import Settings, load_settings
from .options import EnvFileOpt, EnvironmentOpt, value_of
from .output import ExitCode, fail, set_json_mode

__all__ = ["export", "run"]

_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def child_environment(settings: Settings, only: list[str] | None, base: dict[str, str]) -> dict[str, str]:
    """``base`` with each variable (or the ``only`` ones) set to its value as of now."""
    env = dict(base)
    plain = {
        "ENVIRONMENT": settings.environment,
        "AWS_REGION": settings.aws_region,
        "SECRETS_PREFIX": settings.secrets_prefix,
        "SECRETS_REPLICA_REGIONS": settings.secrets_replica_regions or None,
        "SECRETS_CACHE_TTL": f"{settings.secrets_cache_ttl:g}",
        "ACCESS_TOKEN_EXPIRE_MINUTES": str(settings.access_token_expire_minutes),
    }
    for name in only or VARIABLE_NAMES:
        if name in SECRET_VARIABLES:
            value = settings.secret(name).get().value.get_secret_value() if settings.has_secret(name) else None
        else:
            value = plain[name]
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _only(only: list[str] | None) -> tuple[str, ...]:
    unknown = sorted(set(only or []) - set(VARIABLE_NAMES))
    if unknown:
        fail(f"--only: not a setting: {', '.join(unknown)} (one of {', '.join(VARIABLE_NAMES)})", ExitCode.USAGE)
    return tuple(n for n in SECRET_VARIABLES if n in only) if only else SECRET_VARIABLES


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
    secrets = _only(only)
    settings = load_settings(environment=value_of(environment), env_file=env_file, secrets=secrets)
    try:
        values = {n: v for n, v in child_environment(settings, only, {}).items() if n in (only or VARIABLE_NAMES)}
    finally:
        settings.close()
    if fmt == "json":
        sys.stdout.write(json.dumps(values, indent=2) + "\n")
    else:
        sys.stdout.write("".join(_dotenv_line(n, v) + "\n" for n, v in values.items()))


def run(
    ctx: typer.Context,
    environment: EnvironmentOpt = None,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            help="Inject only this variable (repeatable), e.g. --only DATABASE_URL; other secrets are not even read.",
        ),
    ] = None,
    env_file: EnvFileOpt = Path(".env"),
) -> None:
    """Run a command with the resolved settings in its environment (references replaced by values).

    Exits with the command's exit code; SIGINT, SIGTERM and SIGHUP are passed on to it.
    Nothing is printed but errors, and no error holds a value. With --only, only
    those secrets are read, so a role that may read nothing else can use it.

    Example: ecomind run --environment staging --only DATABASE_URL -- ecomind migrate
    """
    command = list(ctx.args)
    if not command:
        fail("give the command after --, e.g. ecomind run -- env", ExitCode.USAGE)
    secrets = _only(only)
    settings = load_settings(environment=value_of(environment), env_file=env_file, secrets=secrets)
    try:
        env = child_environment(settings, only, dict(os.environ))
    finally:
        settings.close()
    # Handlers go in before the child starts: a signal that arrives in between is
    # held and passed on as soon as the child exists.
    pending: list[int] = []
    children: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, frame: object) -> None:
        if children:
            children[0].send_signal(signum)
        else:
            pending.append(signum)

    for sig in _FORWARDED:
        signal.signal(sig, forward)
    try:
        child = subprocess.Popen(command, env=env)
    except FileNotFoundError:
        fail(f"command not found: {command[0]}", 127, fix="give a path (./script.sh) or a command on PATH")
    except PermissionError:
        fail(f"command not executable: {command[0]}", 126, fix=f"chmod +x {command[0]}")
    children.append(child)
    for signum in pending:
        child.send_signal(signum)
    code = child.wait()
    # A child killed by a signal reports -N; shells report 128+N.
    sys.exit(128 - code if code < 0 else code)
