"""EcoMind's settings: one typed, immutable object, built once per process.

Three steps, each in its own place:

1. :func:`app.secrets.sources.collect` reads the process environment, then ``.env``
   (development only), decides the environment and parses references;
2. :func:`inspect_settings` resolves every reference in one pass through a
   :class:`~app.secrets.store.SecretStore` and applies the policy of the environment
   (:data:`app.secrets.policy.CHECKS`, one function per value, called once), keeping
   every problem found. ``ecomind doctor`` and ``ecomind config check`` report this
   inspection; they have no checks of their own;
3. :func:`load_settings` turns a clean inspection into :class:`Settings` or raises
   :class:`SettingsError` listing every problem at once.

Secret values are read through :meth:`Settings.secret`, which returns a
:class:`~app.secrets.live.LiveSecret`: ``settings.secret("DATABASE_URL").get()`` is the
database URL as of now (it follows rotations; a cached read, no network). There is
no start-time copy of a secret on the settings object.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from app.secrets import redact
from app.secrets.base import SecretValue, SecretVersion
from app.secrets.endpoints import on_this_machine, secretsmanager_endpoint
from app.secrets.environment import (
    DEFAULT_CACHE_TTL,
    SECRET_VARIABLES,
    VARIABLE_NAMES,
    Environment,
    EnvironmentModel,
    variable,
)
from app.secrets.errors import Finding, Problem, ResolutionError, SettingsError, set_key_fix
from app.secrets.live import LiveSecret
from app.secrets.policy import CHECKS
from app.secrets.refs import AwsRef, Reference, is_reference
from app.secrets.regions import parse_regions, region_option
from app.secrets.sources import Collected, Origin, collect
from app.secrets.stats import Stats
from app.secrets.store import ResolvedSecret, SecretStore

__all__ = ["Inspection", "Settings", "inspect_settings", "load_settings"]


def _default(name: str) -> Any:
    """The default of a variable, as the model of an environment says (None: none)."""
    return variable(name).default


class Settings(BaseModel):
    """The resolved configuration. Build it with :func:`load_settings`.

    A plain pydantic model, not a ``BaseSettings``: the secret layer is the reader.
    :func:`app.secrets.sources.collect` reads the process environment and ``.env`` itself,
    because it must know where each value came from and resolve references before anything
    is validated; a second reader of the environment here would only be switched off.

    Its fields are the non-secret variables of the model (app/secrets/environment.py), named
    by it (a field is its variable in lower case) and defaulting as it says; a variable the
    model adds or drops without a field here fails at import. The secret variables are read
    through :meth:`secret`.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, validate_default=True, alias_generator=str.upper
    )

    environment: Environment = _default("ENVIRONMENT")
    aws_region: str | None = _default("AWS_REGION")
    secrets_prefix: str  # the model's, always given: the default depends on the environment
    secrets_replica_regions: str | None = _default("SECRETS_REPLICA_REGIONS")
    secrets_cache_ttl: float = Field(_default("SECRETS_CACHE_TTL"), gt=0)
    access_token_expire_minutes: int = Field(_default("ACCESS_TOKEN_EXPIRE_MINUTES"), gt=0)

    _origins: dict[str, Origin] = PrivateAttr(default_factory=dict)
    _warnings: list[Problem] = PrivateAttr(default_factory=list)
    _secrets: dict[str, LiveSecret] = PrivateAttr(default_factory=dict)
    _store: SecretStore | None = PrivateAttr(None)
    _model: EnvironmentModel | None = PrivateAttr(None)

    def plain(self) -> dict[str, str | None]:
        """The non-secret variables as a process reads them (``ecomind run``): None when unset."""
        return {
            name: None if value in (None, "") else f"{value:g}" if isinstance(value, float) else str(value)
            for name, value in self.model_dump(by_alias=True).items()
        }

    @property
    def model(self) -> EnvironmentModel:
        assert self._model is not None, "build Settings with load_settings()"
        return self._model

    @property
    def origins(self) -> Mapping[str, Origin]:
        return self._origins

    @property
    def warnings(self) -> list[Problem]:
        return list(self._warnings)

    @property
    def stats(self) -> Stats:
        """The counters of this process's secret layer (app/observe/metrics.py exports them)."""
        assert self._store is not None, "build Settings with load_settings()"
        return self._store.stats

    def prepare_refresh(self) -> None:
        """Build the AWS client that refreshes use, if any secret lives in AWS (botocore's import
        included): after a prefetched start (app/asgi.py), in the background."""
        if self._store is not None and any(live.regions() for live in self._secrets.values()):
            self._store.aws.client()

    def has_secret(self, variable: str) -> bool:
        return variable in self._secrets

    def secret(self, variable: str) -> LiveSecret:
        """The live handle of a secret variable (DATABASE_URL, JWT_SECRET, REDIS_URL)."""
        try:
            return self._secrets[variable]
        except KeyError:
            raise KeyError(f"{variable} is not set (or was not asked for)") from None

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


_PLAIN = tuple(name for name in VARIABLE_NAMES if name not in SECRET_VARIABLES)
if tuple(field.alias for field in Settings.model_fields.values()) != _PLAIN:
    raise TypeError(f"Settings' fields must be the model's non-secret variables, in its order: {', '.join(_PLAIN)}")


@dataclass
class Inspection:
    """Everything loading found: values, resolution errors and problems, per variable."""

    collected: Collected
    store: SecretStore
    fields: dict[str, object]
    values: dict[str, str] = field(default_factory=dict)  # checked values, as the app uses them
    resolved: dict[str, ResolvedSecret] = field(default_factory=dict)  # per variable, for references
    errors: dict[str, ResolutionError] = field(default_factory=dict)  # per variable
    invalid: set[str] = field(default_factory=set)  # variables whose value the policy refused
    problems: list[Problem] = field(default_factory=list)
    base: Settings | None = None

    @property
    def model(self) -> EnvironmentModel:
        return self.collected.model

    @property
    def ok(self) -> bool:
        return self.base is not None and not any(p.severity == "error" for p in self.problems)

    def settings(self) -> Settings:
        """The settings, which then own the store; raises :class:`SettingsError` when not :attr:`ok`."""
        if not self.ok or self.base is None:
            self.store.close()
            raise SettingsError(self.problems, {n: o.describe() for n, o in self.collected.origins.items()})
        m = self.model
        settings = self.base
        settings._origins = dict(self.collected.origins)
        settings._warnings = list(self.problems)
        settings._store = self.store
        settings._model = m
        for name in self.values:
            check = CHECKS[name]
            ref: Reference | None = self.collected.references.get(name)
            transform = (lambda raw, check=check: check(m, raw).value) if name == "DATABASE_URL" else None
            if ref is not None:
                settings._secrets[name] = LiveSecret(name, store=self.store, ref=ref, transform=transform)
            else:
                static = ResolvedSecret(SecretValue(self.values[name]), None, name)
                settings._secrets[name] = LiveSecret(name, static=static)
        return settings


def inspect_settings(
    environ: Mapping[str, str] | None = None,
    *,
    env_file: Path | None = Path(".env"),
    environment: str | None = None,
    store: SecretStore | None = None,
    secrets: tuple[str, ...] = SECRET_VARIABLES,
    prefetched: Mapping[str, tuple[SecretVersion, float]] | None = None,
) -> Inspection:
    """Read, resolve and check, collecting every problem; raises only for an unknown ENVIRONMENT.

    ``prefetched``: versions already fetched by app/prefetch.py (by reference text); the
    store takes them instead of asking AWS again.
    """
    redact.install()
    c = collect(environ, env_file=env_file, environment=environment, secrets=secrets)
    env = os.environ if environ is None else environ
    problems = list(c.problems)
    # Non-secret fields first: the store needs a valid TTL.
    fields, base = _plain_fields(c, problems)
    if store is None:
        store = c.store(env, ttl=base.secrets_cache_ttl if base else DEFAULT_CACHE_TTL)
    if prefetched:
        store.seed(dict(prefetched))
    inspection = Inspection(c, store, fields, base=base)
    raws, served = _resolve(c, store, inspection, problems)
    _check_values(c, raws, served, _emulator(env), inspection, problems)
    inspection.problems = problems
    return inspection


def _plain_fields(c: Collected, problems: list[Problem]) -> tuple[dict[str, object], Settings | None]:
    """The non-secret fields and the settings validated from them (None when invalid, each error a problem)."""
    fields: dict[str, object] = {k: v for k, v in c.raw.items() if k not in SECRET_VARIABLES}
    fields.update(ENVIRONMENT=c.model.name, SECRETS_PREFIX=c.model.prefix)
    base: Settings | None = None
    try:
        base = Settings.model_validate(fields)
    except ValidationError as exc:
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "settings"
            # error["msg"] describes the rule, never the input.
            problems.append(Problem(name, c.source(name), error["msg"], "see docs/secrets.md, Environment variables"))

    _, not_regions = parse_regions(c.raw.get("SECRETS_REPLICA_REGIONS"))
    if not_regions:
        problems.append(
            Problem(
                "SECRETS_REPLICA_REGIONS",
                c.source("SECRETS_REPLICA_REGIONS"),
                f"{', '.join(repr(r[:30]) for r in not_regions)} is not an AWS region",
                "list regions separated by commas, e.g. SECRETS_REPLICA_REGIONS=us-west-2,eu-west-1",
            )
        )
    return fields, base


def _resolve(
    c: Collected, store: SecretStore, inspection: Inspection, problems: list[Problem]
) -> tuple[dict[str, str], dict[str, str | None]]:
    """Every reference read in one pass: the raw value of each secret variable, and the region
    each was read in (for the fixes printed); a reference that fails is a problem."""
    resolved, errors = store.load_all(c.references.values()) if c.references else ({}, {})
    raws: dict[str, str] = {}
    served: dict[str, str | None] = {}
    for name in SECRET_VARIABLES:
        ref = c.references.get(name)
        if ref is None:
            if name in c.raw and not is_reference(c.raw[name]):  # a malformed reference is reported already
                raws[name] = c.raw[name]
        elif ref in errors:
            inspection.errors[name] = errors[ref]
            err = errors[ref]
            problems.append(Problem(name, c.source(name), err.message, err.fix, kind=err.kind))
        elif ref in resolved:
            inspection.resolved[name] = resolved[ref]
            raws[name] = resolved[ref].value.get_secret_value()
            served[name] = resolved[ref].region
    return raws, served


def _check_values(
    c: Collected,
    raws: Mapping[str, str],
    served: Mapping[str, str | None],
    emulator: bool,
    inspection: Inspection,
    problems: list[Problem],
) -> None:
    """Each value checked by the policy of its variable: findings become problems, the checked
    value is kept (and registered for redaction)."""
    for name, raw in raws.items():
        checked = CHECKS[name](c.model, raw)
        ref = c.references.get(name)
        for finding in checked.findings:
            problems.append(
                Problem(
                    name,
                    c.source(name),
                    finding.message,
                    _fix(name, finding, ref, c, emulator, served.get(name)),
                    finding.severity,
                )
            )
        inspection.values[name] = checked.value
        if not checked.ok:
            inspection.invalid.add(name)
        redact.register(checked.value)


def _endpoint(env: Mapping[str, str]) -> str | None:
    return secretsmanager_endpoint(env)


def _emulator(env: Mapping[str, str]) -> bool:
    return on_this_machine(_endpoint(env))


def _fix(name: str, finding: Finding, ref: Reference | None, c: Collected, emulator: bool, region: str | None) -> str:
    """The policy's fix, unless where the value lives calls for another one.

    ``region``: where the value was read; the printed command names it (a shell that passed
    AWS_REGION inline to this one does not pass it to the next)."""
    if isinstance(ref, AwsRef) and (finding.is_example or name == "JWT_SECRET"):
        # The value lives in Secrets Manager: a rotation replaces it with a generated one.
        local = " --local" if emulator else ""
        return f"ecomind secrets rotate {ref.secret_id}{local} {region_option(region)}"
    if isinstance(ref, AwsRef) and finding.json_key is not None:
        return set_key_fix(ref.secret_id, finding.json_key, region)
    origin = c.origins.get(name)
    if finding.is_example and origin is not None and origin.source == "env" and not c.model.deployed:
        return f"unset {name}   # the process environment overrides .env (ecomind init writes a generated one)"
    return finding.fix


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    env_file: Path | None = Path(".env"),
    environment: str | None = None,
    store: SecretStore | None = None,
    secrets: tuple[str, ...] = SECRET_VARIABLES,
    prefetched: Mapping[str, tuple[SecretVersion, float]] | None = None,
) -> Settings:
    """Read, resolve and validate the configuration; raises :class:`SettingsError`.

    ``environment`` overrides ``ENVIRONMENT`` (the CLI's ``--environment``).
    ``store`` is made here when not given; the settings own it (``settings.close()``).
    ``secrets`` limits which secret variables are read: the migration task needs
    ``("DATABASE_URL",)`` only, and its role may read nothing else.
    """
    return inspect_settings(
        environ, env_file=env_file, environment=environment, store=store, secrets=secrets, prefetched=prefetched
    ).settings()
