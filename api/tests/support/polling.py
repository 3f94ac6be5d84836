"""Waiting for a state, never for a fixed time: poll until it holds, fail naming it when it does not."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["still_running", "wait_until"]

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T], timeout: float, what: str = "the awaited state", interval: float = 0.05
) -> T:
    """Call ``predicate`` until it returns something true, and return that.

    After ``timeout`` seconds an AssertionError names ``what``. An exception ``predicate`` raises
    (an assert that the process awaited still runs, say) ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got:
            return got
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(interval)


def still_running(proc: subprocess.Popen[Any]) -> bool:
    """True while ``proc`` runs; once it has stopped, an AssertionError with its exit code, which ends
    the wait_until it is called in."""
    code = proc.poll()
    assert code is None, f"{proc.args!r} stopped (exit {code})"
    return True
