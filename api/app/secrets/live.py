"""A handle on one secret variable that follows rotation.

:meth:`LiveSecret.get` is the one way to read a secret variable's value in the app:
a cached read from the store (no network), shaped as the app uses it (a database
secret becomes a URL with the environment's SSL mode). :meth:`LiveSecret.refresh`
fetches again because the value was rejected (a database refused the password).
A plain value (not a reference) is its own, constant, handle.
"""

from __future__ import annotations

from collections.abc import Callable

from app.secrets.base import SecretValue
from app.secrets.refs import AwsRef, Reference
from app.secrets.store import Health, ResolvedSecret, SecretStore

__all__ = ["LiveSecret"]


class LiveSecret:
    """A plain object (no pydantic machinery): the request path pays one dict look-up."""

    __slots__ = ("_last", "_ref", "_static", "_store", "_transform", "variable")

    def __init__(
        self,
        variable: str,
        *,
        store: SecretStore | None = None,
        ref: Reference | None = None,
        static: ResolvedSecret | None = None,
        transform: Callable[[str], str] | None = None,
    ) -> None:
        if (ref is None) == (static is None) or (ref is not None and store is None):
            raise ValueError("a LiveSecret is either a reference with its store or a static value")
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
        if self._static is not None:
            return self._static
        assert self._store is not None and self._ref is not None
        return self._shape(self._store.get(self._ref, stage))

    def refresh(self, stage: str | None = None, region: str | None = None) -> ResolvedSecret:
        """Fetch again now; from ``region`` only when given (see :meth:`regions`)."""
        if self._static is not None:
            return self._static
        assert self._store is not None and self._ref is not None
        return self._shape(self._store.refresh(self._ref, stage, region))

    def health(self) -> Health | None:
        """How the value has been kept fresh (None for a plain value, or before the first load)."""
        if self._store is None or self._ref is None:
            return None
        return self._store.health(self._ref)

    def regions(self) -> list[str | None]:
        """Where this secret can be read: its primary region, then the replicas ([] if not AWS)."""
        if not isinstance(self._ref, AwsRef) or self._store is None:
            return []
        return self._store.regions()

    def _shape(self, resolved: ResolvedSecret) -> ResolvedSecret:
        if self._transform is None:
            return resolved
        last = self._last
        if last is not None and last[0] is resolved:
            return last[1]
        shaped = ResolvedSecret(
            SecretValue(self._transform(resolved.value.get_secret_value())),
            resolved.version_id,
            resolved.reference,
            resolved.region,
        )
        self._last = (resolved, shaped)
        return shaped
