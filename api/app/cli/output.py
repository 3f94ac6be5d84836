"""What every command shares: consoles, masking, and turning errors into exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit, urlunsplit

import typer
from rich.console import Console

from ..secrets import redact
from ..secrets.errors import SecretsError

__all__ = ["err", "fail", "guarded", "mask", "out", "print_json"]


class _ScrubbingConsole(Console):
    """A console that replaces every resolved secret value in the text it prints."""

    def print(self, *objects: Any, **kwargs: Any) -> None:  # type: ignore[override]
        super().print(*(redact.scrub(o) if isinstance(o, str) else o for o in objects), **kwargs)


out = _ScrubbingConsole(highlight=False, soft_wrap=True)
err = _ScrubbingConsole(stderr=True, highlight=False, soft_wrap=True)

P = ParamSpec("P")
R = TypeVar("R")

_SECRET = {"DATABASE_URL", "REDIS_URL", "JWT_SECRET"}


def mask(variable: str, value: str | None) -> str:
    """A value as it may be shown: URLs keep all but the password, secrets only their size."""
    if value is None:
        return "-"
    if variable not in _SECRET:
        return value
    if "://" in value:
        try:
            parts = urlsplit(value)
            host = parts.hostname or ""
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            return "**** (unparseable URL)"
        user = parts.username or ""
        auth = f"{user}:****@" if parts.password else (f"{user}@" if user else "")
        return urlunsplit((parts.scheme, f"{auth}{host}{port}", parts.path, parts.query, ""))
    return f"**** ({len(value.encode())} bytes)"


def print_json(data: Any) -> None:
    # Plain print: rich would wrap long lines and break the JSON for machines.
    sys.stdout.write(redact.scrub(json.dumps(data, indent=2, default=str)) + "\n")


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", markup=True)
    return typer.Exit(code)


def guarded(func: Callable[P, R]) -> Callable[P, R]:
    """Secret-layer errors become one message and exit 1, never a traceback."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except SecretsError as exc:
            raise fail(str(exc)) from None

    return wrapper
