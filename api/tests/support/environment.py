"""The environment a test gives a child process: what it needs of ours, and nothing else, plus its own."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

__all__ = ["BASE", "child_env"]

# What every child needs of this process's environment: where its programs are, a home, a locale.
BASE = ("PATH", "HOME", "LANG")


def child_env(extra: Mapping[str, str] | None = None, *, keep: Iterable[str] = BASE) -> dict[str, str]:
    """``keep``'s variables as this process has them (those it has), then ``extra`` over them.

    Nothing else of ours leaks into the child: no AWS_*, no DATABASE_URL, no ENVIRONMENT a test set.
    """
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env.update(extra or {})
    return env
