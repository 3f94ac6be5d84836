"""What the operator's shell says of the environment, read in one place for every command.

``ENVIRONMENT``, ``SECRETS_PREFIX``, ``SECRETS_REPLICA_REGIONS`` and ``AWS_REGION``, as the
``ecomind secrets`` commands take them: read when a command asks (a test or a shell may
change them between two commands of one process), never at import. The API reads the same
names through :func:`app.settings.loading.inspect_settings`, ``.env`` included in development.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from app.secrets.regions import parse_regions

__all__ = ["shell"]


@dataclass(frozen=True)
class Shell:
    environment: str  # "" when unset
    prefix: str | None  # SECRETS_PREFIX as set (the model strips and checks it)
    replica_regions: list[str]  # SECRETS_REPLICA_REGIONS, the region names among them
    region: str | None  # AWS_REGION


def shell() -> Shell:
    """The variables as the shell holds them now."""
    replicas, _ = parse_regions(os.environ.get("SECRETS_REPLICA_REGIONS"))
    return Shell(
        environment=os.environ.get("ENVIRONMENT") or "",
        prefix=os.environ.get("SECRETS_PREFIX") or None,
        replica_regions=replicas,
        region=os.environ.get("AWS_REGION") or None,
    )
