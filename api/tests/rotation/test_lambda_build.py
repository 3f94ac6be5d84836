"""`make lambda` packages what the handlers import.

scripts/build-lambda.sh runs in a copy of the repository with a pip that only records
the packages it is asked for (no download). The handlers the model names are then
imported in an isolated interpreter that sees the script's copy of the package, the
asked-for packages with their dependencies, and boto3 with its dependencies (what the
Lambda runtime provides), nothing else: a module the script forgets fails the import.
"""

from __future__ import annotations

import importlib.metadata as md
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from app.secrets.environment import SECRETS

from ..support.environment import child_env

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
# Options of the script's pip call that take a value (the rest of its arguments are requirements).
PIP_VALUED = {"--target", "--platform", "--implementation", "--python-version"}


def closure(requirements: list[str]) -> set[str]:
    """The distributions these requirements install, dependencies and extras included."""
    found: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in found and not req.extras:
            continue
        found.add(name)
        for spec in md.distribution(name).requires or []:
            dep = Requirement(spec)
            wanted = dep.marker is None or any(dep.marker.evaluate({"extra": e}) for e in {"", *req.extras})
            if wanted:
                todo.append(dep)
    return found


def site_of(distributions: set[str], into: Path) -> Path:
    """A folder holding only these distributions' top-level modules (links into this venv)."""
    into.mkdir()
    for name in distributions:
        dist = md.distribution(name)
        tops = {f.parts[0] for f in dist.files or [] if not f.parts[0].endswith((".dist-info", ".data"))}
        for top in tops - {"..", "bin", "__pycache__"}:
            target = Path(str(dist.locate_file(top)))
            if target.exists() and not (into / top).exists():
                (into / top).symlink_to(target)
    return into


def test_the_handlers_import_from_what_the_build_packages(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts/build-lambda.sh", repo / "scripts")
    shutil.copytree(REPO / "api/app", repo / "api/app", ignore=shutil.ignore_patterns("__pycache__"))
    asked = tmp_path / "pip-args"
    pip = tmp_path / "pip"
    pip.write_text(f"#!/usr/bin/env bash\nprintf '%s\\n' \"$@\" > {asked}\n")
    pip.chmod(0o755)
    env = child_env()
    built = subprocess.run(
        ["bash", "scripts/build-lambda.sh"], cwd=repo, env={**env, "PIP": str(pip)}, capture_output=True, text=True
    )
    assert built.returncode == 0, built.stderr
    args = asked.read_text().split()
    requirements = [a for i, a in enumerate(args) if not a.startswith("-") and args[i - 1] not in PIP_VALUED][1:]
    assert requirements, args  # the first one is pip's "install"

    packaged = site_of(closure(requirements), tmp_path / "packaged")
    runtime = site_of(closure(["boto3"]), tmp_path / "runtime")  # the Lambda Python runtime's SDK
    handlers = [spec.rotation_handler.rpartition(".") for spec in SECRETS]
    probe = (
        "import importlib, sys\n"
        f"sys.path[:0] = {[str(repo / 'build/lambda'), str(packaged), str(runtime)]!r}\n"
        f"for module, _, name in {handlers!r}:\n"
        "    assert callable(getattr(importlib.import_module(module), name))\n"
        "print(sorted({m.__file__ for n, m in sys.modules.items() if n.startswith('app') and m.__file__}))\n"
    )
    imported = subprocess.run([sys.executable, "-I", "-S", "-c", probe], env=env, capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr
    assert str(repo / "build/lambda/app") in imported.stdout and str(REPO) not in imported.stdout
    with zipfile.ZipFile(repo / "build/rotation-lambda.zip") as zf:
        names = set(zf.namelist())
    assert {"app/rotation/emf.py", "app/telemetry.py", "app/data/failures.py", "app/rotation/postgres.py"} <= names
