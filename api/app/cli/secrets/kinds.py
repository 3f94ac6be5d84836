"""Which environment, and which of its secrets, a name or a secret's metadata is.

Every name comes from the model of the environment (:mod:`app.secrets.environment`), with
``SECRETS_PREFIX`` when set; a secret's own tags (``environment``, ``kind``) come first.
"""

from __future__ import annotations

from typing import Any

from app.cli.output import ExitCode, fail
from app.cli.shell import shell
from app.secrets.environment import DEPLOYED, EnvironmentModel, SecretSpec, model
from app.secrets.errors import scheduled_deletion

__all__ = [
    "deletion_notice",
    "environment_model",
    "environment_of",
    "model_of",
    "model_secret",
    "secret_of",
    "stages_of",
]


def environment_model(environment: str | None) -> EnvironmentModel:
    """The model of the environment asked for (or ENVIRONMENT), with SECRETS_PREFIX when set."""
    name = environment or shell().environment
    if not name:
        fail("name the environment: --environment staging or --environment production", ExitCode.USAGE)
    try:
        m = model(name, shell().prefix)
    except ValueError as exc:
        fail(str(exc), ExitCode.USAGE)
    if not m.deployed:
        fail("secrets live in Secrets Manager in staging and production only; use .env in development", ExitCode.USAGE)
    return m


def model_of(name: str | None) -> EnvironmentModel | None:
    """The environment a secret belongs to (by its name), else the one asked for (ENVIRONMENT)."""
    found = model_secret(name) if name else None
    if found is not None:
        return found[0]
    try:
        m = model(shell().environment, shell().prefix)
    except ValueError:
        return None
    return m if m.deployed else None


def model_secret(name: str) -> tuple[EnvironmentModel, SecretSpec] | None:
    """The environment model and secret a name is, under SECRETS_PREFIX or a default prefix."""
    prefixes = [shell().prefix, None]
    for env in DEPLOYED:
        for prefix in prefixes:
            try:
                m = model(env, prefix)
            except ValueError:  # a SECRETS_PREFIX that is not one: the default prefix still counts
                continue
            spec = next((s for s in m.secrets if m.secret_name(s.key) == name), None)
            if spec is not None:
                return m, spec
    return None


def deletion_notice(meta: dict[str, Any]) -> str | None:
    """'scheduled for deletion on DATE' when the secret is, else None."""
    deleted = meta.get("DeletedDate")
    return scheduled_deletion(deleted) if deleted else None


def environment_of(meta: dict[str, Any]) -> str | None:
    """The environment a secret belongs to: its tag, or the default prefix its name starts with."""
    tagged = next((t["Value"] for t in meta.get("Tags", []) if t["Key"] == "environment"), None)
    if tagged in DEPLOYED:
        return str(tagged)
    for env in DEPLOYED:
        if str(meta.get("Name", "")).startswith(model(env).prefix + "/"):
            return env
    return None


def secret_of(meta: dict[str, Any]) -> tuple[EnvironmentModel, SecretSpec] | None:
    """Which environment's which secret this is: by its own tags (provision writes environment
    and kind), whatever its name or the shell's SECRETS_PREFIX; untagged, by its name."""
    tags = {t["Key"]: t["Value"] for t in meta.get("Tags", [])}
    name = str(meta.get("Name", ""))
    env = tags.get("environment")
    if env not in DEPLOYED:
        return model_secret(name)
    m = model(env)  # what a value must be depends on the environment, not on the prefix
    kind = tags.get("kind")
    if kind is None:
        # Tagged with its environment only (before kinds were, or by hand): the last part of its name.
        kind = name.rsplit("/", 1)[-1]
    spec = next((s for s in m.secrets if s.key == kind), None)
    return (m, spec) if spec is not None else None


def stages_of(meta: dict[str, Any]) -> dict[str, list[str]]:
    mapping = meta.get("VersionIdsToStages") or {}
    return {version: sorted(stages) for version, stages in mapping.items() if stages}
