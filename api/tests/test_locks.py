"""The venvs hold exactly what the locks pin, and the locks are what the project declares.

requirements/*.txt are compiled by `make lock` (uv) from api/pyproject.toml,
deploy/requirements-tools.txt and requirements/*.in; `make setup` and `make deploy-tools`
install them with `pip install --require-hashes --no-deps` after `scripts/locks.py check`.
A package installed by hand, upgraded, or missing makes these tests fail.
"""

import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.markers import Marker, default_environment
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
LOCKS = REPO / "requirements"
PROJECT = "ecomind-api"  # installed from api/ itself (pip install --no-deps -e api), not from a lock

# `name[extras]==version ; marker \`, the first line of each pin; its --hash= lines follow.
PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(?P<version>[^\s;\\]+)\s*(;(?P<marker>[^\\]+))?\\?$"
)

# What a venv's interpreter has installed, and the environment its markers are evaluated in
# (the keys of PEP 508), read by that interpreter in isolated mode (no current directory on sys.path).
PROBE = """
import importlib.metadata, json, os, platform, sys
env = {
    "implementation_name": sys.implementation.name,
    "implementation_version": platform.python_version(),
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_python_implementation": platform.python_implementation(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}
dists = [[d.metadata["Name"], d.version] for d in importlib.metadata.distributions()]
print(json.dumps({"env": env, "dists": dists}))
"""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    marker: str | None
    hashes: int


def read_lock(name: str) -> list[Pin]:
    pins: list[Pin] = []
    for line in (LOCKS / f"{name}.txt").read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("--hash=sha256:"):
            pins[-1] = Pin(pins[-1].name, pins[-1].version, pins[-1].marker, pins[-1].hashes + 1)
        elif stripped and not stripped.startswith("#"):
            match = PIN.match(stripped)
            assert match, f"requirements/{name}.txt: not a pin: {line!r}"
            marker = match["marker"].strip() if match["marker"] else None
            pins.append(Pin(canonical(match["name"]), match["version"], marker, 0))
    assert pins, f"requirements/{name}.txt pins nothing"
    return pins


def for_environment(pins: list[Pin], env: Mapping[str, str]) -> dict[str, str]:
    """The pins whose markers hold in `env`, name -> version."""
    chosen: dict[str, str] = {}
    for pin in pins:
        if pin.marker is None or Marker(pin.marker).evaluate(env):
            assert pin.name not in chosen, f"{pin.name} is pinned twice for this interpreter"
            chosen[pin.name] = pin.version
    return chosen


def probe(venv: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(installed name -> version, marker environment) of a venv."""
    python = venv / "bin" / "python"
    if not python.exists():
        pytest.fail(f"{venv.name} does not exist: run make setup deploy-tools")
    out = subprocess.run([str(python), "-I", "-c", PROBE], capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    installed: dict[str, str] = {}
    for name, version in data["dists"]:
        key = canonical(name)
        assert key not in installed, f"{venv.name}: {key} is installed twice ({installed[key]}, {version})"
        installed[key] = version
    return installed, data["env"]


def drift(locked: dict[str, str], installed: dict[str, str], tolerated: dict[str, str] | None = None) -> list[str]:
    """Every difference between a lock and a venv; `tolerated`: pins that may be installed too."""
    tolerated = tolerated or {}
    problems = []
    for name, version in sorted(locked.items()):
        if name not in installed:
            problems.append(f"missing: {name}=={version}")
        elif installed[name] != version:
            problems.append(f"{name}: installed {installed[name]}, locked {version}")
    for name, version in sorted(installed.items()):
        if name in locked or name == PROJECT:
            continue
        if tolerated.get(name) != version:
            problems.append(f"not in the lock: {name}=={version}")
    return problems


def test_the_locks_are_up_to_date_with_what_the_project_declares() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/locks.py", "check"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_the_app_venv_holds_exactly_the_locked_versions() -> None:
    installed, env = probe(Path(sys.prefix))
    locked = for_environment(read_lock("app"), env)
    assert {"fastapi", "pytest", "pre-commit", "detect-secrets", "pip", "setuptools"} <= locked.keys()
    # `make bench` adds requirements/bench.txt's pins on top (the same versions of app.txt's).
    bench = for_environment(read_lock("bench"), env)
    assert drift(locked, installed, tolerated=bench) == [], "rebuild it: rm -rf .venv && make setup"
    assert PROJECT in installed, "the project itself is not installed in .venv"


@pytest.mark.deploy
def test_the_deploy_venv_holds_exactly_the_locked_versions() -> None:
    installed, env = probe(REPO / ".venv-deploy")
    locked = for_environment(read_lock("deploy"), env)
    assert {"checkov", "cfn-lint", "awscli", "pip"} <= locked.keys()
    assert drift(locked, installed) == [], "rebuild it: rm -rf .venv-deploy && make deploy-tools"


def test_a_drift_is_seen() -> None:
    locked = {"a": "1.0", "b": "2.0"}
    assert drift(locked, {"a": "1.0", "b": "2.0", PROJECT: "0.1.0"}) == []
    assert drift(locked, {"a": "1.1", "c": "3.0"}) == [
        "a: installed 1.1, locked 1.0",
        "missing: b==2.0",
        "not in the lock: c==3.0",
    ]
    assert drift(locked, {"a": "1.0", "b": "2.0", "c": "3.0"}, tolerated={"c": "3.1"}) == ["not in the lock: c==3.0"]


@pytest.mark.parametrize("name", ["uv", "app", "bench", "deploy"])
def test_every_pin_carries_the_hashes_of_its_files(name: str) -> None:
    assert [pin.name for pin in read_lock(name) if pin.hashes == 0] == []


def test_bench_pins_what_app_pins_at_the_same_versions() -> None:
    app = {(pin.name, pin.marker): pin.version for pin in read_lock("app")}
    bench = {(pin.name, pin.marker): pin.version for pin in read_lock("bench")}
    assert {key: (version, bench.get(key)) for key, version in app.items() if bench.get(key) != version} == {}


def _declared(*extras: str) -> list[str]:
    project = tomllib.loads((REPO / "api" / "pyproject.toml").read_text())["project"]
    return [*project["dependencies"], *(req for extra in extras for req in project["optional-dependencies"][extra])]


def _requirements_file(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [
        ("app", lambda: [*_declared("dev"), *_requirements_file(LOCKS / "build.in")]),
        ("bench", lambda: [*_declared("dev", "bench"), *_requirements_file(LOCKS / "build.in")]),
        (
            "deploy",
            lambda: [
                *_requirements_file(REPO / "deploy" / "requirements-tools.txt"),
                *_requirements_file(LOCKS / "deploy.in"),
            ],
        ),
        ("uv", lambda: _requirements_file(LOCKS / "uv.in")),
    ],
)
def test_each_lock_satisfies_the_requirements_it_is_compiled_from(
    lock: str, requirements: Callable[[], list[str]]
) -> None:
    env = default_environment()
    pins = for_environment(read_lock(lock), env)
    unmet = []
    for line in requirements():
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        version = pins.get(canonical(req.name))
        if version is None or not req.specifier.contains(version, prereleases=True):
            unmet.append(f"{line}: locked {version}")
    assert unmet == []


def test_a_dependency_added_without_make_lock_stops_the_install(tmp_path: Path) -> None:
    """The Makefile checks the lock before pip runs: nothing is resolved on the fly, nothing left out."""
    for path in ("Makefile", "scripts/locks.py", "api/pyproject.toml", "deploy/requirements-tools.txt"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / path, tmp_path / path)
    shutil.copytree(LOCKS, tmp_path / "requirements")
    pyproject = tmp_path / "api" / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text.replace("dependencies = [\n", 'dependencies = [\n    "prometheus-client>=0.20",\n', 1))

    result = subprocess.run(
        ["make", "setup", f"PYTHON={sys.executable}"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "requirements/app.txt is out of date with api/pyproject.toml" in result.stderr
    assert "run `make lock`" in result.stderr
    assert not (tmp_path / ".venv").exists(), "the venv was built from a stale lock"
