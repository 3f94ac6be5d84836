"""``ecomind run -- CMD ARGS...``: run a command with the resolved settings in its environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..secrets.errors import SettingsError
from ..settings import VARIABLES, Settings, load_settings
from .output import fail

__all__ = ["child_environment", "run"]

_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def child_environment(settings: Settings, only: list[str] | None, base: dict[str, str]) -> dict[str, str]:
    """``base`` with each variable (or the ``only`` ones) set to its resolved value."""
    env = dict(base)
    for name in only or VARIABLES:
        value = getattr(settings, name.lower())
        if value is None:
            env.pop(name, None)
            continue
        env[name] = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
    return env


def run(
    ctx: typer.Context,
    environment: Annotated[
        str | None, typer.Option("--environment", "-e", help="development, staging or production.")
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Inject only this variable (repeatable), e.g. --only DATABASE_URL."),
    ] = None,
    env_file: Annotated[Path, typer.Option("--env-file", help=".env read in development.")] = Path(".env"),
) -> None:
    """Run a command with the resolved settings in its environment (references replaced by values).

    Exits with the command's exit code; SIGINT, SIGTERM and SIGHUP are passed on to it.
    Nothing is printed but errors, and no error holds a value.

    Example: ecomind run --environment staging -- ./scripts/run_migrations.sh upgrade head
    """
    command = list(ctx.args)
    if not command:
        raise typer.BadParameter("give the command after --, e.g. ecomind run -- env", param_hint="CMD")
    unknown = sorted(set(only or []) - set(VARIABLES))
    if unknown:
        raise typer.BadParameter(
            f"not a setting: {', '.join(unknown)} (one of {', '.join(VARIABLES)})", param_hint="--only"
        )
    try:
        settings = load_settings(environment=environment, env_file=env_file)
    except SettingsError as exc:
        raise fail(str(exc)) from None
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
        raise fail(f"command not found: {command[0]}", 127) from None
    except PermissionError:
        raise fail(f"command not executable: {command[0]}", 126) from None
    children.append(child)
    for signum in pending:
        child.send_signal(signum)
    code = child.wait()
    # A child killed by a signal reports -N; shells report 128+N.
    sys.exit(128 - code if code < 0 else code)
