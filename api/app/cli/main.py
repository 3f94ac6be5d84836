"""Entry point of the ``ecomind`` console script: dispatch and the last line of defence.

``ecomind run`` goes straight to :func:`app.cli.run_cmd.main` (argparse, no typer, no
pydantic): it stands in front of every migration and container entrypoint. Every other
command goes through the typer tree in :mod:`app.cli.tree`, built only then.

Every error ends here as one message and an exit code (:class:`~app.cli.output.ExitCode`),
never a traceback, and never a value: raw inputs of secret variables are registered
with the redactor before any command runs.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from app.cli import run_cmd
from app.cli.output import CommandExit, ExitCode, data, exit_code, json_mode, problem_count, report, say, set_json_mode
from app.secrets import redact
from app.secrets.environment import SECRET_VARIABLES
from app.secrets.errors import SecretsError, SettingsError
from app.secrets.refs import is_reference

__all__ = ["main"]


def _settings_error(exc: SettingsError) -> int:
    code = exit_code(exc.error_kind)
    problems = [
        {"variable": p.variable, "source": p.source, "severity": p.severity, "message": p.message, "fix": p.fix}
        for p in exc.problems
    ]
    report(f"configuration invalid: {problem_count(exc.problems)}", code, problems=problems)
    if not json_mode():
        for p in exc.problems:
            data(f"- {p.severity} {p.variable} (from {p.source}): {redact.scrub(p.message)}", err=True)
            data(f"    fix: {p.fix}", err=True)
    return int(code)


def _aws_error(exc: Exception) -> SecretsError | None:
    """A botocore error no command translated (a client made without a region, say), typed."""
    if "botocore" not in sys.modules:
        return None
    import botocore.exceptions

    from app.secrets.aws_errors import translate_error

    if isinstance(exc, botocore.exceptions.ClientError | botocore.exceptions.BotoCoreError):
        return translate_error(exc, "AWS", "AWS")
    return None


def _run(argv: list[str]) -> int:
    if argv[:1] == ["run"]:
        # The fast path: typer builds every command (and imports pydantic for it) before it
        # dispatches; run, in front of every migration and entrypoint, starts without it.
        return _guarded(lambda: run_cmd.main(argv[1:]))
    return _guarded(lambda: _tree()(args=argv, prog_name="ecomind", standalone_mode=False))


def _tree() -> Callable[..., object]:
    from app.cli.tree import app

    return app


def _typer_exit(exc: BaseException) -> int | None:
    """The exit code of typer's own exits and usage errors (reported here), else None."""
    if "typer" not in sys.modules:
        return None
    import typer

    if isinstance(exc, typer.Exit):
        return int(exc.exit_code)
    if isinstance(exc, typer.Abort):
        report("interrupted", ExitCode.INTERRUPTED)
        return int(ExitCode.INTERRUPTED)
    if isinstance(exc, typer.TyperException):  # usage errors (bad option: exit code 2) and the like
        code = int(getattr(exc, "exit_code", ExitCode.FAILED))
        format_message = getattr(exc, "format_message", None)
        message = format_message() if callable(format_message) else str(exc)
        ctx = getattr(exc, "ctx", None)
        command = ctx.command_path if ctx is not None else "ecomind"
        report(message, code, fix=f"{command} --help" if code == ExitCode.USAGE else "")
        return code
    return None


def _guarded(call: Callable[[], object]) -> int:
    try:
        result = call()
    except CommandExit as exc:
        return exc.exit_code
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
        typer_code = _typer_exit(exc)
        if typer_code is not None:
            return typer_code
        from app.data.engine import DatabaseConnectError

        if isinstance(exc, DatabaseConnectError):
            from app.cli.postgres_cmd import ssl_fix

            ssl = exc.failure is not None and exc.failure.kind == "ssl"
            report(str(exc), ExitCode.DATABASE, fix=ssl_fix(exc.host) if ssl else "ecomind doctor")
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
