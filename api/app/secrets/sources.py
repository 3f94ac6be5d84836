"""Reading the sources: the process environment, then ``.env`` (development only).

:func:`collect` decides the environment, reads every variable of the contract with
where it came from, and parses references. It touches no network. Every raw value
of a secret variable is registered with the redactor as soon as it is read, so an
error about it (a malformed URL quoted by a driver, say) cannot print it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from dotenv import dotenv_values

from app.secrets import redact
from app.secrets.endpoints import secretsmanager_endpoint
from app.secrets.environment import (
    DEFAULT_CACHE_TTL,
    ENVIRONMENTS,
    SECRET_VARIABLES,
    VARIABLE_NAMES,
    EnvironmentModel,
    model,
    variable,
)
from app.secrets.errors import MalformedReference, Problem, SettingsError
from app.secrets.refs import Reference, is_reference, parse_reference
from app.secrets.regions import REGION_PLACEHOLDER, parse_regions
from app.secrets.store import SecretStore

__all__ = ["Collected", "Origin", "collect"]

SourceKind = Literal["env", "cli", ".env", "default"]


@dataclass(frozen=True)
class Origin:
    """Where a variable's value came from; ``reference`` when it names a secret."""

    source: SourceKind
    reference: str | None = None

    def describe(self) -> str:
        where = {"env": "process environment", "cli": "--environment", ".env": ".env", "default": "default"}[
            self.source
        ]
        return f"{where} -> {self.reference}" if self.reference else where


@dataclass
class Collected:
    """What the sources say before anything is resolved."""

    model: EnvironmentModel
    raw: dict[str, str]
    origins: dict[str, Origin]
    references: dict[str, Reference]
    problems: list[Problem] = field(default_factory=list)
    env_file_present: bool = False

    @property
    def environment(self) -> str:
        return self.model.name

    def source(self, variable: str) -> str:
        origin = self.origins.get(variable)
        return origin.describe() if origin else "unset"

    def store(self, environ: Mapping[str, str], ttl: float = DEFAULT_CACHE_TTL) -> SecretStore:
        """The store these references are read from: the region, endpoint and replicas they name."""
        return SecretStore(
            ttl=ttl,
            region=self.raw.get("AWS_REGION"),
            endpoint_url=secretsmanager_endpoint(environ),
            replica_regions=parse_regions(self.raw.get("SECRETS_REPLICA_REGIONS"))[0],
        )


def collect(
    environ: Mapping[str, str] | None = None,
    *,
    env_file: Path | None = Path(".env"),
    environment: str | None = None,
    secrets: tuple[str, ...] = SECRET_VARIABLES,
) -> Collected:
    """Read env and .env, decide the environment, parse references; no network.

    Raises :class:`SettingsError` only for an unknown ENVIRONMENT (every other rule
    depends on it); other problems are returned in ``problems``. ``secrets`` limits
    the secret variables read: the others are ignored, as if unset.
    """
    env = os.environ if environ is None else environ
    problems: list[Problem] = []
    raw: dict[str, str] = {}
    origins: dict[str, Origin] = {}
    for name in VARIABLE_NAMES:
        if env.get(name):
            raw[name], origins[name] = env[name], Origin("env")
    if environment:
        raw["ENVIRONMENT"], origins["ENVIRONMENT"] = environment, Origin("cli")
    dotenv = _read_dotenv(env_file, raw)
    env_name = _decide_environment(raw, dotenv, origins, problems)
    m = _apply_model(env_name, raw, dotenv, origins, problems, env_file)
    references = _references(m, raw, origins, problems, secrets)
    return Collected(m, raw, origins, references, problems, bool(dotenv))


def _read_dotenv(env_file: Path | None, raw: Mapping[str, str]) -> dict[str, str | None]:
    """The .env file's values (whether they count is decided later); every plain secret value read,
    from the process or from .env, is registered for redaction."""
    dotenv: dict[str, str | None] = {}
    if env_file is not None and env_file.is_file():
        dotenv = dict(dotenv_values(env_file))
    for name in SECRET_VARIABLES:
        for value in (raw.get(name), dotenv.get(name)):
            if value and not is_reference(value):
                redact.register_input(value)
    return dotenv


def _decide_environment(
    raw: dict[str, str], dotenv: Mapping[str, str | None], origins: dict[str, Origin], problems: list[Problem]
) -> str:
    """The environment's name; an unknown one raises :class:`SettingsError`."""
    # ENVIRONMENT decides whether .env counts, so .env may only confirm "development".
    env_name = raw.get("ENVIRONMENT")
    if env_name is None and dotenv.get("ENVIRONMENT"):
        env_name = dotenv["ENVIRONMENT"] or ""
        origins["ENVIRONMENT"] = Origin(".env")
        if env_name in ENVIRONMENTS and model(env_name).deployed:
            problems.append(
                Problem(
                    "ENVIRONMENT",
                    ".env",
                    f"{env_name} is set in .env, which is only read in development",
                    f"set ENVIRONMENT={env_name} in the process environment (task definition, manifest)",
                )
            )
    env_name = (env_name or "development").strip()
    if env_name not in ENVIRONMENTS:
        origin = origins.get("ENVIRONMENT", Origin("env")).describe()
        raise SettingsError(
            [
                Problem(
                    "ENVIRONMENT",
                    origin,
                    f"'{env_name[:40]}' is not an environment",
                    "use one of: " + ", ".join(ENVIRONMENTS),
                )
            ]
        )
    origins.setdefault("ENVIRONMENT", Origin("default"))
    return env_name


def _apply_model(
    env_name: str,
    raw: dict[str, str],
    dotenv: Mapping[str, str | None],
    origins: dict[str, Origin],
    problems: list[Problem],
    env_file: Path | None,
) -> EnvironmentModel:
    """The environment's model: .env read where it counts (reported where it does not), the prefix
    and the region it requires."""
    m = model(env_name)
    if dotenv and m.reads_dotenv:
        for name in VARIABLE_NAMES:
            value = dotenv.get(name)
            if name not in raw and value:
                raw[name], origins[name] = value, Origin(".env")
    try:
        m = model(env_name, raw.get("SECRETS_PREFIX"))
    except ValueError as exc:
        problems.append(
            Problem("SECRETS_PREFIX", origins["SECRETS_PREFIX"].describe(), str(exc), "unset SECRETS_PREFIX")
        )
        raw.pop("SECRETS_PREFIX", None)
    if dotenv and not m.reads_dotenv:
        problems.append(
            Problem(
                ".env",
                str(env_file),
                f"a .env file is present and ignored in {m.name}",
                f"rm {env_file}   # in an image or on a server; on a developer's laptop this warning is expected",
                "warning",
            )
        )
    origins.setdefault("SECRETS_PREFIX", Origin("default"))
    if m.region_required and not raw.get("AWS_REGION"):
        problems.append(
            Problem(
                "AWS_REGION",
                "unset",
                f"is required in {m.name} (region of Secrets Manager)",
                "set AWS_REGION to the region of the secrets in the task definition or manifest (deploy/render.py "
                f"{m.name} --get AWS_REGION); in a shell: export AWS_REGION={REGION_PLACEHOLDER}",
            )
        )
    return m


def _references(
    m: EnvironmentModel,
    raw: dict[str, str],
    origins: dict[str, Origin],
    problems: list[Problem],
    secrets: tuple[str, ...],
) -> dict[str, Reference]:
    """Each secret variable's reference: the one it holds, or the environment's default when unset;
    variables outside ``secrets`` are dropped as if unset."""
    references: dict[str, Reference] = {}
    for name in SECRET_VARIABLES:
        if name not in secrets:
            raw.pop(name, None)
            origins.pop(name, None)
            continue
        value = raw.get(name)
        if value is None:
            default = m.default_reference(name)
            if default is not None:
                references[name] = parse_reference(default)
                origins[name] = Origin("default", default)
            elif variable(name).required == "yes":
                problems.append(Problem(name, "unset", "is required", "ecomind init"))
            continue
        if is_reference(value):
            try:
                references[name] = parse_reference(value)
            except MalformedReference as exc:
                problems.append(Problem(name, origins[name].describe(), exc.message, exc.fix))
                continue
            origins[name] = Origin(origins[name].source, str(references[name]))
    return references
