"""How every command prints: messages, data, tables, JSON, errors and exit codes.

Two kinds of text leave the CLI:

* **messages** (what we say: problems, progress, errors, anything a library wrote)
  go through :func:`app.secrets.redact.scrub`, which removes every secret value the
  process has seen, resolved or raw;
* **data** (names, ARNs, policies, URLs without passwords, commands to run) prints
  verbatim: no console markup, no emoji codes (``:secret:`` in an ARN stays
  ``:secret:``), no scrubbing (a short secret such as ``development`` must not eat
  ``ENVIRONMENT=development``), and in pipes no wrapping or truncation.

With ``--json`` anywhere before ``--``, everything a command prints on stdout is
one JSON document, errors included (:func:`fail`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from enum import IntEnum
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from app.secrets import redact
from app.secrets.environment import SECRET_VARIABLES
from app.secrets.errors import ErrorKind, Problem
from app.secrets.urls import userinfo_finding

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "CommandExit",
    "ExitCode",
    "Verbatim",
    "data",
    "exit_code",
    "fail",
    "json_mode",
    "mask",
    "print_json",
    "problem_count",
    "report",
    "say",
    "set_json_mode",
    "table",
]


class ExitCode(IntEnum):
    """What each exit code means; docs/troubleshooting.md prints this table."""

    OK = 0
    FAILED = 1  # a check failed (doctor), or an error of no other kind
    USAGE = 2  # a bad option or argument
    CONFIG = 3  # the configuration is invalid (a value, a reference, the region, the endpoint)
    NOT_FOUND = 4  # a secret, a stage or a file does not exist (or is scheduled for deletion)
    DENIED = 5  # AWS refused access or the credentials, or there are no AWS credentials
    UNREACHABLE = 6  # Secrets Manager could not be reached, or throttled past the retries
    DATABASE = 7  # the database could not be reached or refused the login
    NOT_CHECKED = 8  # doctor: nothing failed, but some checks could not run
    INTERRUPTED = 130  # Ctrl-C


_KIND_CODES: dict[ErrorKind, ExitCode] = {
    "failed": ExitCode.FAILED,
    "config": ExitCode.CONFIG,
    "not_found": ExitCode.NOT_FOUND,
    "denied": ExitCode.DENIED,
    "unreachable": ExitCode.UNREACHABLE,
}


def exit_code(kind: ErrorKind) -> ExitCode:
    return _KIND_CODES[kind]


class CommandExit(Exception):
    """A command ends with this exit code; its error, if any, has been printed (:func:`fail`).

    Ours rather than typer's ``Exit`` so that ``ecomind run`` (cli/main.py's fast path) never
    imports typer; cli/main.py turns either into the process's exit code.
    """

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.exit_code = int(code)


class Verbatim(str):
    """A string that is data: printed and put in JSON as it is, never scrubbed."""

    __slots__ = ()


def _console(stderr: bool) -> Console:
    from rich.console import Console  # rich only when something is printed

    # In a pipe, no width limit: a name is never cut or folded for a reader that is a program.
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 100_000
    return Console(stderr=stderr, highlight=False, markup=False, emoji=False, soft_wrap=True, width=width)


_out: Console | None = None
_err: Console | None = None
_json = False


def _consoles() -> tuple[Console, Console]:
    global _out, _err
    if _out is None or _err is None:
        _out, _err = _console(False), _console(True)
    return _out, _err


def set_json_mode(on: bool) -> None:
    global _json
    _json = on


def json_mode() -> bool:
    return _json


def say(text: str, *, err: bool = False, style: str | None = None) -> None:
    """A message: scrubbed of every secret value seen."""
    from rich.text import Text

    out, error = _consoles()
    (error if err else out).print(Text(redact.scrub(text), style=style or ""))


def data(text: str, *, err: bool = False, style: str | None = None) -> None:
    """Data, verbatim."""
    from rich.text import Text

    out, error = _consoles()
    (error if err else out).print(Text(text, style=style or ""))


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """A table of data (names, stages, dates), verbatim; long cells fold, never cut."""
    from rich.table import Table
    from rich.text import Text

    grid = Table(title=title)
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*(Text(cell) for cell in row))
    _consoles()[0].print(grid)


def _secret_key(key: str) -> bool:
    return any(word in key.lower() for word in ("pass", "secret", "token", "key"))


def mask(variable: str, value: str | None) -> Verbatim:
    """A value as it may be shown: URLs keep all but the password, secrets only their size."""
    if value is None:
        return Verbatim("-")
    if variable not in SECRET_VARIABLES:
        return Verbatim(value)
    if "://" in value:
        if userinfo_finding(value) is not None:
            # urlsplit would misplace the password's end and show part of it as the host or path.
            return Verbatim("**** (a URL whose password needs percent-encoding)")
        try:
            parts = urlsplit(value)
            host = parts.hostname or ""
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            return Verbatim("**** (unparseable URL)")
        user = parts.username or ""
        auth = f"{user}:****@" if parts.password else (f"{user}@" if user else "")
        # A password may also ride in the query (?password=, libpq's): masked there too.
        query = urlencode(
            [(k, "****" if _secret_key(k) else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)],
            safe="*",
        )
        return Verbatim(urlunsplit((parts.scheme, f"{auth}{host}{port}", parts.path, query, "")))
    return Verbatim(f"**** ({len(value.encode())} bytes)")


def _scrubbed(value: Any) -> Any:
    if isinstance(value, Verbatim):
        return str(value)
    if isinstance(value, str):
        return redact.scrub(value)
    if isinstance(value, dict):
        return {str(k): _scrubbed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(v) for v in value]
    return value


def problem_count(problems: Iterable[Problem]) -> str:
    """``2 error(s)``, or ``1 error(s), 1 warning(s)``: errors and warnings counted apart."""
    severities = [p.severity for p in problems]
    errors, warnings = severities.count("error"), severities.count("warning")
    return f"{errors} error(s)" + (f", {warnings} warning(s)" if warnings else "")


def print_json(document: Any) -> None:
    """One JSON document on stdout; strings are scrubbed unless they are :class:`Verbatim`."""
    # Plain write: a console would wrap long lines and break the JSON for machines.
    sys.stdout.write(json.dumps(_scrubbed(document), indent=2, default=str) + "\n")
    sys.stdout.flush()


def report(message: str, code: int = ExitCode.FAILED, *, fix: str = "", **extra: Any) -> None:
    """Print an error: a JSON document in --json mode, else two lines on stderr."""
    if _json:
        kind = ExitCode(code).name.lower() if code in ExitCode._value2member_map_ else "command"
        error = {"code": int(code), "kind": kind, "message": message, "fix": Verbatim(fix), **extra}
        print_json({"ok": False, "error": error})
    else:
        say(f"error: {message}", err=True, style="bold red")
        if fix:
            data(f"  fix: {fix}", err=True)


def fail(message: str, code: int = ExitCode.FAILED, *, fix: str = "") -> NoReturn:
    """Report an error and exit with ``code`` (see :class:`ExitCode`)."""
    report(message, code, fix=fix)
    raise CommandExit(code)
