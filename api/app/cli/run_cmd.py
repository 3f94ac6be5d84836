"""``ecomind run -- CMD ARGS...``: run a command with the resolved settings in its environment."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from app.cli.output import ExitCode, fail
from app.secrets.environment import ENVIRONMENTS, SECRET_VARIABLES, VARIABLE_NAMES

if TYPE_CHECKING:
    from app.settings.loading import Settings

__all__ = ["HELP", "child_environment", "main", "only_secrets"]

HELP = """Run a command with the resolved settings in its environment (references replaced by values).

The process becomes the command (exec): the command receives the signals (SIGTERM,
Ctrl-C) itself, and its exit code is the exit code. Nothing is printed but errors,
and no error holds a value. With --only, only those secrets are read, so a role
that may read nothing else can use it.

Example: ecomind run --environment staging --only DATABASE_URL -- ecomind migrate
"""
"""``ecomind run``'s help: argparse prints it for ``ecomind run --help``, the command tree for ``ecomind --help``."""


def child_environment(settings: Settings, only: list[str] | None, base: dict[str, str]) -> dict[str, str]:
    """``base`` with each variable (or the ``only`` ones) set to its value as of now."""
    env = dict(base)
    plain = settings.plain()
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


def only_secrets(only: list[str] | None) -> tuple[str, ...]:
    unknown = sorted(set(only or []) - set(VARIABLE_NAMES))
    if unknown:
        fail(f"--only: not a setting: {', '.join(unknown)} (one of {', '.join(VARIABLE_NAMES)})", ExitCode.USAGE)
    return tuple(n for n in SECRET_VARIABLES if n in only) if only else SECRET_VARIABLES


def _parser() -> argparse.ArgumentParser:
    """``ecomind run``'s options, in one place: the fast path (cli/main.py) and ``--help`` use it."""
    p = argparse.ArgumentParser(
        prog="ecomind run",
        description=HELP,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    p.add_argument("-e", "--environment", choices=ENVIRONMENTS, help="overrides ENVIRONMENT")
    p.add_argument(
        "--only",
        action="append",
        choices=VARIABLE_NAMES,
        metavar="VARIABLE",
        help="inject only this variable (repeatable), e.g. --only DATABASE_URL; other secrets are not even read",
    )
    p.add_argument("--env-file", type=Path, default=Path(".env"), help="the .env file read in development")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    return p


def main(argv: list[str]) -> int:
    """``ecomind run ARGS``: parsed here, without typer, because it sits in front of every migration
    and every container entrypoint and must start as fast as the command it runs."""
    args = _parser().parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        fail("give the command after --, e.g. ecomind run -- env", ExitCode.USAGE)
    if args.env_file != Path(".env") and not args.env_file.is_file():
        fail(f"--env-file: {args.env_file} is not a file", ExitCode.USAGE)
    secrets = only_secrets(args.only)
    from app import prefetch

    # A child fetches the secrets (botocore) while this process imports the settings (pydantic).
    pending = prefetch.start(args.env_file, environment=args.environment, secrets=secrets)
    from app.settings.loading import load_settings

    settings = load_settings(
        environment=args.environment,
        env_file=args.env_file,
        secrets=secrets,
        prefetched=pending.versions() if pending is not None else None,
    )
    try:
        env = child_environment(settings, args.only, dict(os.environ))
    finally:
        settings.close()
    return _exec(command, env)


def _exec(command: list[str], env: dict[str, str]) -> int:
    """Become the command (exec), as a container entrypoint should: it gets the signals
    (SIGTERM from ``docker stop``, Ctrl-C) directly, and its exit status is the process's."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(command[0], command, env)  # noqa: S606 - the command is the operator's, on purpose
    except FileNotFoundError:
        fail(f"command not found: {command[0]}", 127, fix="give a path (./script.sh) or a command on PATH")
    except PermissionError:
        fail(f"command not executable: {command[0]}", 126, fix=f"chmod +x {command[0]}")
    except OSError as exc:
        fail(f"cannot run {command[0]}: {exc.strerror}", 126)
