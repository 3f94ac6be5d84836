#!/usr/bin/env python3
"""The project's Python locks and what each is compiled from.

    python3 scripts/locks.py check [NAME...]   exit 1 when a lock is out of date with its inputs
    python3 scripts/locks.py stamp             record the inputs' digest in every lock (make lock)

Every lock under requirements/ pins each package with the hashes of its files (`make lock`
compiles them with uv). It also carries one line `# inputs-sha256: HEX`, the digest of the
requirements it was compiled from as they are declared: api/pyproject.toml's dependencies,
extras, requires-python and build requirements, deploy/requirements-tools.txt and
requirements/*.in. The installs of the Makefile run `check` first, so a dependency added to
pyproject without `make lock` stops the install with the command to run, instead of being
resolved on the fly or silently left out (pip runs with --no-deps).

Standard library only: it runs before any venv exists.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = "api/pyproject.toml"
STAMP = "# inputs-sha256: "


@dataclass(frozen=True)
class Lock:
    path: str
    extras: tuple[str, ...] | None  # api/pyproject.toml's extras; None: the lock is not the app's
    files: tuple[str, ...]  # requirements files compiled into it

    def inputs(self) -> list[str]:
        project = [f"{PYPROJECT} (dependencies, extras {', '.join(self.extras)})"] if self.extras is not None else []
        return [*project, *self.files]


LOCKS = {
    # uv itself, which compiles the other locks (make lock installs it in .venv-lock).
    "uv": Lock("requirements/uv.txt", None, ("requirements/uv.in",)),
    # .venv: the app, its dev tools, and the pip and setuptools that install it.
    "app": Lock("requirements/app.txt", ("dev",), ("requirements/build.in",)),
    # .venv after make bench: the same pins as app.txt plus the bench extra.
    "bench": Lock("requirements/bench.txt", ("dev", "bench"), ("requirements/build.in",)),
    # .venv-deploy: the validators of make validate-deploy.
    "deploy": Lock("requirements/deploy.txt", None, ("deploy/requirements-tools.txt", "requirements/deploy.in")),
}


def _requirement_lines(path: Path) -> list[str]:
    """The requirements of a file, comments and spacing aside, in a stable order."""
    lines = (re.sub(r"\s+", "", line.split("#", 1)[0]) for line in path.read_text().splitlines())
    return sorted(line for line in lines if line)


def _project(extras: tuple[str, ...]) -> dict[str, object]:
    data = tomllib.loads((ROOT / PYPROJECT).read_text())
    project = data["project"]
    optional = project.get("optional-dependencies", {})
    missing = [extra for extra in extras if extra not in optional]
    if missing:
        raise SystemExit(f"{PYPROJECT} has no extra {', '.join(missing)}")
    return {
        "requires-python": project.get("requires-python"),
        "build-system": sorted(data.get("build-system", {}).get("requires", [])),
        "dependencies": sorted(project.get("dependencies", [])),
        "extras": {extra: sorted(optional[extra]) for extra in extras},
    }


def digest(lock: Lock) -> str:
    declared: dict[str, object] = {"files": {name: _requirement_lines(ROOT / name) for name in lock.files}}
    if lock.extras is not None:
        declared["project"] = _project(lock.extras)
    return hashlib.sha256(json.dumps(declared, sort_keys=True).encode()).hexdigest()


def recorded(lock: Lock) -> str | None:
    path = ROOT / lock.path
    if not path.exists():
        return None
    for line in path.read_text().splitlines():
        if line.startswith(STAMP):
            return line[len(STAMP) :].strip()
    return None


def stamp(lock: Lock) -> None:
    path = ROOT / lock.path
    lines = [line for line in path.read_text().splitlines() if not line.startswith(STAMP)]
    # After uv's header (its leading comment lines), before the first pin.
    at = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    lines.insert(at, f"{STAMP}{digest(lock)}")
    path.write_text("\n".join(lines) + "\n")


def check(names: list[str]) -> int:
    stale = []
    for name in names:
        lock = LOCKS[name]
        found = recorded(lock)
        if found != digest(lock):
            why = "does not exist" if not (ROOT / lock.path).exists() else "is out of date"
            stale.append(f"  {lock.path} {why} with {' and '.join(lock.inputs())}")
    if stale:
        print("the locks do not match what the project declares:", *stale, sep="\n", file=sys.stderr)
        print("run `make lock` and commit the locks with the change of requirements", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    command, names = (argv[0], argv[1:]) if argv else ("", [])
    unknown = [name for name in names if name not in LOCKS]
    if command not in ("check", "stamp") or unknown:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        if unknown:
            print(f"unknown lock {', '.join(unknown)}; the locks: {', '.join(LOCKS)}", file=sys.stderr)
        return 2
    if command == "stamp":
        for name in names or LOCKS:
            stamp(LOCKS[name])
        return 0
    return check(names or list(LOCKS))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
