"""The one small base every secret backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from .errors import ResolutionError

__all__ = ["Fetched", "SecretBackend", "SecretVersion"]

K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class SecretVersion:
    """One version of one whole secret, as the backend returned it."""

    value: str = field(repr=False)  # never in a repr, a log line or a traceback
    version_id: str | None
    stages: tuple[str, ...] = ()
    region: str | None = None  # the region that answered (a replica's, after a failover)
    created: float | None = None  # when the version was created (epoch seconds), if the store says


Fetched = SecretVersion | ResolutionError


class SecretBackend(ABC, Generic[K]):
    """Fetches whole secrets (no JSON key applied) for a batch of keys.

    A backend answers every key it was given: with a version, or with the translated
    error for that key. Only a failure that concerns the whole batch may raise.
    """

    @abstractmethod
    def fetch(self, keys: Sequence[K]) -> dict[K, Fetched]: ...

    def close(self) -> None:
        """Release pools and threads; the default has nothing to release."""
