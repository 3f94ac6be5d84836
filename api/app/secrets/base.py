"""The one small base every secret backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from app.secrets.errors import ResolutionError

__all__ = ["Fetched", "SecretBackend", "SecretValue", "SecretVersion"]

K = TypeVar("K")


class SecretValue:
    """A secret string that never shows itself: ``str``, ``repr`` and f-strings print asterisks.

    What pydantic's ``SecretStr`` does, in a few lines of our own: the secret layer (the
    store, ``ecomind run``) must load without pydantic, whose import is most of what the
    layer would otherwise hold in memory (bench/profile_memory.py).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretValue('**********')" if self._value else "SecretValue('')"

    def __str__(self) -> str:
        return "**********" if self._value else ""

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretValue) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __len__(self) -> int:
        return len(self._value)


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
