"""How the doctor prints its checks, apart from how it makes them: a line each, or one JSON document.

The exit code says what was found: 0 when every check passed, 1 when one failed, 8 when
none failed but some could not run (docs/troubleshooting.md, "Exit codes").
"""

from __future__ import annotations

from app.cli.doctor.base import Check
from app.cli.output import ExitCode, data, print_json, say

__all__ = ["report"]


def _exit_code(checks: list[Check]) -> ExitCode:
    if any(c.status == "fail" for c in checks):
        return ExitCode.FAILED
    return ExitCode.NOT_CHECKED if any(c.status == "not_checked" for c in checks) else ExitCode.OK


def report(checks: list[Check], *, as_json: bool) -> ExitCode:
    """Print the checks (each failure or warning with its fix) and a summary; return the exit code."""
    code = _exit_code(checks)
    if as_json:
        print_json({"ok": code == ExitCode.OK, "exit_code": int(code), "checks": [c.as_dict() for c in checks]})
        return code
    marks = {"ok": (" ok ", "green"), "fail": ("FAIL", "red"), "warn": ("warn", "yellow")}
    for c in checks:
        mark, style = marks.get(c.status, ("not checked", "magenta"))
        # Names, references and hosts print verbatim; driver text in details was scrubbed when read.
        data(f"{mark} {c.name}: {c.detail}", style=style)
        if c.fix and c.status in ("fail", "warn", "not_checked"):  # a check not run: the command that runs it
            data("      fix: " + c.fix.replace("\n", "\n      "))
    failed = sum(c.status == "fail" for c in checks)
    unchecked = sum(c.status == "not_checked" for c in checks)
    if failed:
        say(f"doctor: {failed} problem(s) found", err=True)
    elif unchecked:
        say(f"doctor: no problem found, but {unchecked} check(s) could not run", err=True)
    else:
        say("doctor: all checks passed")
    return code
