"""EcoMind's settings: one typed, immutable object, built once per process.

Sources, first match wins: the process environment, then ``.env`` (development
only; python-dotenv parses it), then defaults. A secret-bearing variable may hold a
reference (``arn:...``, ``aws-secretsmanager:...``, ``file:...``); in staging and
production an unset ``DATABASE_URL`` / ``JWT_SECRET`` means
``aws-secretsmanager:{SECRETS_PREFIX}/database`` / ``.../jwt``. All references are
resolved together by one :class:`~app.secrets.store.SecretStore`, then the policy of
the environment is applied, and every problem found is reported at once.

Attribute reads (``settings.jwt_secret``) are plain attribute reads of the values
resolved at start. Consumers that must follow a rotation ask :meth:`Settings.current`
(cached, no network) or :meth:`Settings.refresh` (after a rejected value).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import Field, PrivateAttr, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .secrets import redact
from .secrets.aws import secretsmanager_endpoint
from .secrets.dburl import Finding, parse_database_secret
from .secrets.errors import MalformedReference, Problem, ResolutionError, SettingsError
from .secrets.policy import (
    ENVIRONMENTS,
    Environment,
    check_example_value,
    check_jwt_secret,
    database_ssl,
)
from .secrets.refs import Reference, default_reference, is_reference, parse_reference
from .secrets.store import ResolvedSecret, SecretStore

__all__ = [
    "DEFAULT_PREFIXES",
    "SECRET_VARIABLES",
    "VARIABLES",
    "Collected",
    "Origin",
    "Settings",
    "collect",
    "load_settings",
]

VARIABLES = (
    "ENVIRONMENT",
    "DATABASE_URL",
    "REDIS_URL",
    "JWT_SECRET",
    "AWS_REGION",
    "SECRETS_PREFIX",
    "SECRETS_CACHE_TTL",
    "ACCESS_TOKEN_EXPIRE_MINUTES",
)
SECRET_VARIABLES = ("DATABASE_URL", "REDIS_URL", "JWT_SECRET")
DEFAULT_PREFIXES: dict[Environment, str] = {
    "development": "ecomind/dev",
    "staging": "ecomind/staging",
    "production": "ecomind/prod",
}
_DEFAULT_SECRET_KIND = {"DATABASE_URL": "database", "JWT_SECRET": "jwt"}

SourceKind = Literal["env", ".env", "default"]


@dataclass(frozen=True)
class Origin:
    """Where a variable's value came from; ``reference`` when it was resolved."""

    source: SourceKind
    reference: str | None = None

    def describe(self) -> str:
        where = {"env": "process environment", ".env": ".env", "default": "default"}[self.source]
        return f"{where} -> {self.reference}" if self.reference else where


class LiveSecret:
    """One secret variable as it is now: a cached read per call, a fetch after a rejection.

    A plain object (no pydantic attribute machinery) so the request path pays only
    the store's dictionary look-up.
    """

    __slots__ = ("_last", "_ref", "_static", "_store", "_transform", "variable")

    def __init__(
        self,
        variable: str,
        store: SecretStore | None,
        ref: Reference | None,
        static: ResolvedSecret | None,
        transform: Callable[[str], str] | None,
    ) -> None:
        self.variable = variable
        self._store = store
        self._ref = ref
        self._static = static
        self._transform = transform
        self._last: tuple[ResolvedSecret, ResolvedSecret] | None = None

    @property
    def is_reference(self) -> bool:
        return self._ref is not None

    def get(self, stage: str | None = None) -> ResolvedSecret:
        if self._ref is None or self._store is None:
            assert self._static is not None
            return self._static
        return self._shape(self._store.get(self._ref, stage))

    def refresh(self, stage: str | None = None) -> ResolvedSecret:
        if self._ref is None or self._store is None:
            assert self._static is not None
            return self._static
        return self._shape(self._store.refresh(self._ref, stage))

    def _shape(self, resolved: ResolvedSecret) -> ResolvedSecret:
        if self._transform is None:
            return resolved
        last = self._last
        if last is not None and last[0] is resolved:
            return last[1]
        shaped = ResolvedSecret(
            SecretStr(self._transform(resolved.value.get_secret_value())), resolved.version_id, resolved.reference
        )
        self._last = (resolved, shaped)
        return shaped


class Settings(BaseSettings):
    """The resolved configuration. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    environment: Environment = Field("development", alias="ENVIRONMENT")
    database_url: SecretStr = Field(alias="DATABASE_URL")
    redis_url: SecretStr | None = Field(None, alias="REDIS_URL")
    jwt_secret: SecretStr | None = Field(None, alias="JWT_SECRET")  # None only when not asked for
    aws_region: str | None = Field(None, alias="AWS_REGION")
    secrets_prefix: str = Field(alias="SECRETS_PREFIX")
    secrets_cache_ttl: float = Field(300.0, gt=0, alias="SECRETS_CACHE_TTL")
    access_token_expire_minutes: int = Field(60, gt=0, alias="ACCESS_TOKEN_EXPIRE_MINUTES")

    _origins: dict[str, Origin] = PrivateAttr(default_factory=dict)
    _references: dict[str, Reference] = PrivateAttr(default_factory=dict)
    _warnings: list[Problem] = PrivateAttr(default_factory=list)
    _store: SecretStore | None = PrivateAttr(None)
    _live: dict[str, LiveSecret] = PrivateAttr(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings() reads env and .env itself (it must know each value's source
        # and resolve references before validation), so the model takes init values only.
        return (init_settings,)

    # -- provenance --------------------------------------------------------------------

    @property
    def origins(self) -> Mapping[str, Origin]:
        return self._origins

    @property
    def references(self) -> Mapping[str, Reference]:
        return self._references

    @property
    def warnings(self) -> list[Problem]:
        return list(self._warnings)

    @property
    def store(self) -> SecretStore:
        if self._store is None:
            raise RuntimeError("these settings were not built by load_settings()")
        return self._store

    # -- live values -------------------------------------------------------------------

    def live(self, variable: str) -> LiveSecret:
        """A handle on one secret variable that follows rotation; keep it, reads are cheap."""
        handle = self._live.get(variable)
        if handle is None:
            ref = self._references.get(variable)
            static: ResolvedSecret | None = None
            if ref is None:
                value = {"DATABASE_URL": self.database_url, "JWT_SECRET": self.jwt_secret, "REDIS_URL": self.redis_url}[
                    variable
                ]
                if value is None:
                    raise KeyError(f"{variable} is not set")
                static = ResolvedSecret(value, None, variable)
            environment = self.environment
            transform = (lambda raw: _database_value(environment, raw)[0]) if variable == "DATABASE_URL" else None
            handle = LiveSecret(variable, self._store, ref, static, transform)
            self._live[variable] = handle
        return handle

    def current(self, variable: str, stage: str | None = None) -> ResolvedSecret:
        """The value of a secret variable now (follows rotation; never calls AWS when cached)."""
        return self.live(variable).get(stage)

    def refresh(self, variable: str, stage: str | None = None) -> ResolvedSecret:
        """Fetch a secret variable again because its cached value was rejected."""
        return self.live(variable).refresh(stage)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def _database_value(environment: Environment, raw: str) -> tuple[str, list[Finding]]:
    """Shape (URL / connection_string / RDS fields) then SSL policy."""
    secret = parse_database_secret(raw)
    findings = list(secret.findings)
    if any(f.severity == "error" for f in findings):
        return secret.url, findings
    example = check_example_value(environment, secret.url, is_url=True)
    if example:
        findings.append(example)
    url, ssl = database_ssl(environment, secret.url)
    if ssl:
        findings.append(ssl)
    return url, findings


def _redis_findings(environment: Environment, url: str) -> list[Finding]:
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        scheme = ""
    if scheme not in ("redis", "rediss", "unix"):
        return [Finding("is not a Redis URL", "use redis://HOST:6379/0 or rediss:// for TLS")]
    example = check_example_value(environment, url, is_url=True)
    return [example] if example else []


_CHECKS: dict[str, Callable[[Environment, str], list[Finding]]] = {
    "DATABASE_URL": lambda env, v: _database_value(env, v)[1],
    "JWT_SECRET": lambda env, v: [f for f in (check_example_value(env, v), check_jwt_secret(env, v)) if f],
    "REDIS_URL": _redis_findings,
}


@dataclass
class Collected:
    """What the sources say before anything is resolved (used by load_settings and the doctor)."""

    environment: Environment
    raw: dict[str, str]
    origins: dict[str, Origin]
    references: dict[str, Reference]
    prefix: str
    problems: list[Problem]
    env_file_present: bool


def collect(
    environ: Mapping[str, str] | None = None,
    *,
    env_file: Path | None = Path(".env"),
    environment: str | None = None,
    secrets: tuple[str, ...] = SECRET_VARIABLES,
) -> Collected:
    """Read env and .env, decide the environment, parse references; no network.

    Raises :class:`SettingsError` only for an unknown ENVIRONMENT (every other rule
    depends on it); other problems are returned.
    """
    env = os.environ if environ is None else environ
    problems: list[Problem] = []
    raw: dict[str, str] = {}
    origins: dict[str, Origin] = {}
    for name in VARIABLES:
        if env.get(name):
            raw[name], origins[name] = env[name], Origin("env")
    if environment:
        raw["ENVIRONMENT"], origins["ENVIRONMENT"] = environment, Origin("env")

    dotenv: dict[str, str | None] = {}
    if env_file is not None and env_file.is_file():
        dotenv = dict(dotenv_values(env_file))

    # ENVIRONMENT decides whether .env counts, so .env may only confirm "development".
    env_name = raw.get("ENVIRONMENT")
    if env_name is None and dotenv.get("ENVIRONMENT"):
        env_name = dotenv["ENVIRONMENT"] or ""
        origins["ENVIRONMENT"] = Origin(".env")
        if env_name in ("staging", "production"):
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
    environment_: Environment = env_name  # type: ignore[assignment]  # checked just above
    origins.setdefault("ENVIRONMENT", Origin("default"))

    if dotenv and environment_ == "development":
        for name in VARIABLES:
            value = dotenv.get(name)
            if name not in raw and value:
                raw[name], origins[name] = value, Origin(".env")
    elif dotenv:
        problems.append(
            Problem(
                ".env",
                str(env_file),
                f"a .env file is present and ignored in {environment_}",
                "remove it from the image or host; staging/production read the environment and Secrets Manager",
                "warning",
            )
        )

    prefix = raw.get("SECRETS_PREFIX") or DEFAULT_PREFIXES[environment_]
    origins.setdefault("SECRETS_PREFIX", Origin("default"))
    if environment_ == "production" and not raw.get("AWS_REGION"):
        problems.append(
            Problem(
                "AWS_REGION",
                "unset",
                "is required in production (region of Secrets Manager)",
                "set AWS_REGION, e.g. us-east-1, in the task definition or manifest",
            )
        )

    # Secret variables: values, references and default references.
    references: dict[str, Reference] = {}
    for name in SECRET_VARIABLES:
        if name not in secrets:
            raw.pop(name, None)
            continue
        value = raw.get(name)
        if value is None:
            kind = _DEFAULT_SECRET_KIND.get(name)
            if kind and environment_ != "development":
                ref = default_reference(prefix, kind)
                references[name] = ref
                origins[name] = Origin("default", str(ref))
            elif kind:
                problems.append(Problem(name, "unset", "is required", "run `ecomind init` to write a development .env"))
            continue
        if is_reference(value):
            try:
                references[name] = parse_reference(value)
            except MalformedReference as exc:
                problems.append(Problem(name, origins[name].describe(), exc.message, exc.fix))
                continue
            origins[name] = Origin(origins[name].source, str(references[name]))

    return Collected(environment_, raw, origins, references, prefix, problems, bool(dotenv))


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    env_file: Path | None = Path(".env"),
    environment: str | None = None,
    store: SecretStore | None = None,
    secrets: tuple[str, ...] = SECRET_VARIABLES,
) -> Settings:
    """Read, resolve and validate the configuration; raises :class:`SettingsError`.

    ``environment`` overrides ``ENVIRONMENT`` (the CLI's ``--environment``).
    ``store`` is made here when not given; the settings own it (``settings.close()``).
    ``secrets`` limits which secret variables are read: the migration task needs
    ``("DATABASE_URL",)`` only, and its role may read nothing else.
    """
    redact.install()
    c = collect(environ, env_file=env_file, environment=environment, secrets=secrets)
    env = os.environ if environ is None else environ
    environment_, raw, origins, references, prefix, problems = (
        c.environment,
        c.raw,
        c.origins,
        c.references,
        c.prefix,
        c.problems,
    )

    # Non-secret fields first: the store needs a valid TTL. Secrets are placeholders
    # here and swapped in once resolved.
    fields: dict[str, object] = {k: v for k, v in raw.items() if k not in SECRET_VARIABLES}
    fields.update(ENVIRONMENT=environment_, SECRETS_PREFIX=prefix, DATABASE_URL="")
    base: Settings | None = None
    try:
        base = Settings(**fields)  # type: ignore[arg-type]  # aliases are not visible to mypy
    except ValidationError as exc:
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "settings"
            origin = origins.get(name, Origin("default")).describe()
            # error["msg"] describes the rule, never the input.
            problems.append(Problem(name, origin, error["msg"], "see docs/secrets.md, Environment variables"))

    store = store or SecretStore(
        ttl=base.secrets_cache_ttl if base else 300.0,
        region=raw.get("AWS_REGION"),
        endpoint_url=secretsmanager_endpoint(env),
    )
    resolved, errors = store.load_all(references.values())
    values: dict[str, str] = {}
    for name in SECRET_VARIABLES:
        ref = references.get(name)
        if ref is None:
            if name in raw:
                values[name] = raw[name]
                redact.register(raw[name])
        elif ref in errors:
            err: ResolutionError = errors[ref]
            problems.append(Problem(name, origins[name].describe(), err.message, err.fix))
        else:
            values[name] = resolved[ref].value.get_secret_value()

    for name, value in values.items():
        for finding in _CHECKS[name](environment_, value):
            problems.append(Problem(name, origins[name].describe(), finding.message, finding.fix, finding.severity))
    if "DATABASE_URL" in values:
        values["DATABASE_URL"] = _database_value(environment_, values["DATABASE_URL"])[0]

    if base is None or any(p.severity == "error" for p in problems):
        store.close()
        raise SettingsError(problems, {name: origin.describe() for name, origin in origins.items()})
    settings = base.model_copy(
        update={
            "database_url": SecretStr(values["DATABASE_URL"]),
            "jwt_secret": SecretStr(values["JWT_SECRET"]) if "JWT_SECRET" in values else None,
            "redis_url": SecretStr(values["REDIS_URL"]) if "REDIS_URL" in values else None,
        }
    )
    settings._origins = origins
    settings._references = references
    settings._warnings = problems
    settings._store = store
    return settings
