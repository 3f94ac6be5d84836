"""``ecomind export``: print the resolved settings once, as dotenv lines or JSON."""

from __future__ import annotations

import io
import json
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from dotenv import dotenv_values

from app.cli.options import EnvFileOpt, EnvironmentOpt, value_of
from app.cli.output import ExitCode, fail, set_json_mode
from app.cli.run_cmd import child_environment, only_secrets
from app.secrets.environment import VARIABLE_NAMES

__all__ = ["dotenv_line", "export"]


def dotenv_line(name: str, value: str) -> str:
    r"""``NAME=value`` that python-dotenv, and so EcoMind's .env reader (app/secrets/sources.py),
    reads back as ``value``, byte for byte; :class:`ValueError` (naming no value) when none does.

    Single quotes when the value holds no quote, backslash or line break: read literally by
    python-dotenv, docker compose and a shell alike. Otherwise double quotes, with \, \" and
    \n escaped. python-dotenv expands ``${VAR}`` in any quotes (and a file's reader turns a
    carriage return into a line break), so such a value cannot be written: each line is read
    back as a file is, and refused if it differs.
    """
    if not any(c in value for c in "'\\\n\r"):
        line = f"{name}='{value}'"
    else:
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        line = f'{name}="{escaped}"'
    # newline=None: as a file is read, a carriage return becomes a line break.
    if dotenv_values(stream=io.StringIO(line + "\n", newline=None)) != {name: value}:
        if "${" in value:
            raise ValueError(f"{name} holds ${{...}}, which python-dotenv (and EcoMind's .env reader) would expand")
        if "\r" in value:
            raise ValueError(f"{name} holds a carriage return, which a .env file reads as a line break")
        raise ValueError(f"{name} holds characters python-dotenv reads differently")
    return line


def export(
    environment: EnvironmentOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="dotenv or json.")] = "dotenv",
    only: Annotated[list[str] | None, typer.Option("--only", help="Export only this variable (repeatable).")] = None,
    env_file: EnvFileOpt = Path(".env"),
) -> None:
    r"""Print the resolved settings once, as dotenv lines or JSON: values included, on purpose.

    For a one-off (a local shell against staging, a tool that reads .env). Prefer
    `ecomind run`, which gives the values to one command without printing them.

    dotenv: each line reads back byte for byte through python-dotenv, and so through
    EcoMind's own .env reader: NAME='value' (literal), or NAME="value" with \, \" and
    \n escaped when the value holds a quote, a backslash or a line break. A value
    python-dotenv would change (${VAR} in it, which it expands in any quotes; a carriage
    return) is refused, nothing printed: use --format json, which carries any value.

    Example: ecomind export --environment staging --only DATABASE_URL --format dotenv > /dev/shm/staging.env
    """
    set_json_mode(fmt == "json")  # errors too are JSON then
    if fmt not in ("dotenv", "json"):
        fail("--format is dotenv or json", ExitCode.USAGE)
    from app.settings.loading import load_settings

    secrets = only_secrets(only)
    settings = load_settings(environment=value_of(environment), env_file=env_file, secrets=secrets)
    try:
        values = {n: v for n, v in child_environment(settings, only, {}).items() if n in (only or VARIABLE_NAMES)}
    finally:
        settings.close()
    if fmt == "json":
        sys.stdout.write(json.dumps(values, indent=2) + "\n")
        return
    lines = []
    for name, value in values.items():
        try:
            lines.append(dotenv_line(name, value) + "\n")
        except ValueError as exc:
            fix = ["ecomind", "export", "--format", "json"]
            if environment is not None:
                fix += ["--environment", value_of(environment) or ""]
            for variable in only or []:
                fix += ["--only", variable]
            if env_file != Path(".env"):
                fix += ["--env-file", str(env_file)]
            fail(f"{exc}: no dotenv line reads it back as it is", ExitCode.USAGE, fix=shlex.join(fix))
    sys.stdout.write("".join(lines))
