"""Entry point of the ``ecomind`` console script: the command tree and the last line of defence.

::

    ecomind init                       cli/init_cmd.py
    ecomind config check|show          cli/config_cmd.py
    ecomind secrets provision|list|describe|history|get|set|restore|rotate
                                       cli/secrets_cmd.py
    ecomind run -- CMD, export         cli/run_cmd.py
    ecomind doctor                     cli/doctor_cmd.py
    ecomind migrate, users create-admin
                                       cli/db_cmd.py
    ecomind dev                        cli/dev_cmd.py

Every error ends here as one message and an exit code (:class:`~app.cli.output.ExitCode`),
never a traceback, and never a value: raw inputs of secret variables are registered
with the redactor before any command runs.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated

import typer

from ..secrets import redact
from ..secrets.environment import SECRET_VARIABLES
from ..secrets.errors import SecretsError, SettingsError
from ..secrets.refs import is_reference
from . import config_cmd, db_cmd, dev_cmd, doctor_cmd, init_cmd, run_cmd, secrets_cmd
from .output import ExitCode, data, exit_code, json_mode, report, say, set_json_mode

__all__ = ["main"]

app = typer.Typer(
    name="ecomind",
    help="EcoMind operator CLI: local setup, configuration checks, secrets, diagnosis.\n\n"
    "Exit codes: docs/troubleshooting.md. Example: ecomind init && ecomind config check",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        data(f"ecomind {version('ecomind-api')}")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """EcoMind operator CLI: local setup, configuration checks, secrets, diagnosis."""


app.command("init")(init_cmd.init)
app.add_typer(config_cmd.app, name="config")
app.add_typer(secrets_cmd.app, name="secrets")
app.add_typer(db_cmd.users, name="users")
_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}
app.command("migrate", context_settings=_PASS_THROUGH)(db_cmd.migrate)
app.command("dev")(dev_cmd.dev)
app.command("run", context_settings=_PASS_THROUGH)(run_cmd.run)
app.command("export")(run_cmd.export)
app.command("doctor")(doctor_cmd.doctor)


def _settings_error(exc: SettingsError) -> int:
    code = exit_code(exc.error_kind)
    problems = [
        {"variable": p.variable, "source": p.source, "severity": p.severity, "message": p.message, "fix": p.fix}
        for p in exc.problems
    ]
    errors = sum(p.severity == "error" for p in exc.problems)
    report(f"configuration invalid: {errors} error(s)", code, problems=problems)
    if not json_mode():
        for p in exc.problems:
            data(f"- {p.variable} (from {p.source}): {redact.scrub(p.message)}", err=True)
            data(f"    fix: {p.fix}", err=True)
    return int(code)


def _aws_error(exc: Exception) -> SecretsError | None:
    """A botocore error no command translated (a client made without a region, say), typed."""
    if "botocore" not in sys.modules:
        return None
    import botocore.exceptions

    from ..secrets.aws import translate_error

    if isinstance(exc, botocore.exceptions.ClientError | botocore.exceptions.BotoCoreError):
        return translate_error(exc, "AWS", "AWS")
    return None


def _run(argv: list[str]) -> int:
    try:
        result = app(args=argv, prog_name="ecomind", standalone_mode=False)
    except typer.Abort:
        report("interrupted", ExitCode.INTERRUPTED)
        return int(ExitCode.INTERRUPTED)
    except typer.TyperException as exc:  # typer's usage errors (bad option: exit code 2) and the like
        code = int(getattr(exc, "exit_code", ExitCode.FAILED))
        format_message = getattr(exc, "format_message", None)
        message = format_message() if callable(format_message) else str(exc)
        ctx = getattr(exc, "ctx", None)
        command = ctx.command_path if ctx is not None else "ecomind"
        report(message, code, fix=f"{command} --help" if code == ExitCode.USAGE else "")
        return code
    except SettingsError as exc:
        return _settings_error(exc)
    except SecretsError as exc:
        code = exit_code(exc.kind)
        report(exc.message if not exc.variable else f"{exc.variable}: {exc.message}", code, fix=exc.fix)
        return int(code)
    except KeyboardInterrupt:
        report("interrupted", ExitCode.INTERRUPTED)
        return int(ExitCode.INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - last line of defence: no traceback, no value
        from ..db import DatabaseConnectError

        if isinstance(exc, DatabaseConnectError):
            report(str(exc), ExitCode.DATABASE, fix="ecomind doctor")
            return int(ExitCode.DATABASE)
        translated = _aws_error(exc)
        if translated is not None:
            code = exit_code(translated.kind)
            report(translated.message, code, fix=translated.fix)
            return int(code)
        report(f"unexpected {type(exc).__name__}: {exc}", ExitCode.FAILED, fix="ECOMIND_DEBUG=1 shows the traceback")
        if os.environ.get("ECOMIND_DEBUG"):
            import traceback

            say(traceback.format_exc(), err=True)
        return int(ExitCode.FAILED)
    return int(result or 0)


def main() -> None:
    redact.install()
    logging.basicConfig(
        level=os.environ.get("ECOMIND_LOG_LEVEL", "WARNING").upper(),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Raw inputs first: an error about a malformed value (quoted by a driver, say) must not print it.
    for name in SECRET_VARIABLES:
        value = os.environ.get(name)
        if value and not is_reference(value):
            redact.register_input(value)
    argv = sys.argv[1:]
    options = argv[: argv.index("--")] if "--" in argv else argv
    set_json_mode("--json" in options)
    code = _run(argv)
    sys.stdout.flush()
    sys.exit(code)
