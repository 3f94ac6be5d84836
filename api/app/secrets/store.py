"""The secret store: resolves references, caches values, refreshes them in the background.

Reads (:meth:`SecretStore.get`) are a dictionary look-up and a clock read: they never
wait on the network once a reference has been loaded. When a value's TTL has passed,
the read still returns it and wakes one background refresh, which fetches every
expired secret at once (one ``BatchGetSecretValue`` per region for plain references).
If that refresh fails, the last good value keeps serving, the failure is logged
without the value, and the next attempt waits a jittered, growing delay.

:meth:`SecretStore.refresh` is for a consumer that saw a value rejected (a database
that refused the password): it fetches now, and concurrent callers for the same
secret share fetches (never one that started before they asked).

Why not ``aws-secretsmanager-caching`` or Powertools: both refresh on the reading
thread (a request waits on AWS when the TTL passes), and both fetch one secret per
call; we need zero AWS calls on the request path, one call for all secrets, and
the rejected-value path above.

One job, a little over 400 lines: the cache is one class whose reads, refreshes and health
share one lock and one map of cached values; split, each part would reach into the other's state.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from app.secrets import redact
from app.secrets.base import Fetched, SecretValue, SecretVersion
from app.secrets.environment import DEFAULT_CACHE_TTL
from app.secrets.errors import ResolutionError, SecretFormatError
from app.secrets.files import FileBackend
from app.secrets.refs import AwsRef, FileRef, Reference
from app.secrets.stats import Stats, cause_of

if TYPE_CHECKING:
    from app.secrets.aws import AwsSecretsManagerBackend

__all__ = ["Health", "ResolvedSecret", "SecretStore"]

log = logging.getLogger("app.secrets.store")

_MAX_BACKOFF = 300.0


@dataclass(frozen=True, slots=True)
class ResolvedSecret:
    """A value with the version it came from (``None`` for plain values)."""

    value: SecretValue
    version_id: str | None
    reference: str
    region: str | None = None  # the region that served it (a replica's after a failover); None: not AWS


@dataclass(frozen=True)
class Health:
    """How a secret has been kept fresh: what /metrics, /ready and the EMF lines report.

    Times are wall-clock epoch seconds. ``attempts`` and ``failures`` count fetches of the
    secret after its first load (background refreshes and refreshes after a rejected
    value), at any stage of the same secret.
    """

    refreshed_at: float | None  # the last successful fetch of the value served
    created: float | None  # when the version served was created, if the store says
    region: str | None  # the AWS region that served it
    attempts: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # by cause (app.telemetry.CAUSES)
    failing: bool = False  # the last background refresh failed (none has succeeded since)


def _secret_of(ref: Reference) -> object:
    """What identifies a secret whatever the stage, version or key read of it."""
    if isinstance(ref, AwsRef):
        return ("aws", ref.secret_id, ref.region)
    return ("file", ref.path)


class _Source:
    """One fetched secret: a whole secret at a stage or version, or one file."""

    __slots__ = (
        "dependents",
        "expires_at",
        "failures",
        "fetched_ticket",
        "key",
        "lock",
        "refreshed_at",
        "retry_at",
        "version",
    )

    def __init__(self, key: Reference) -> None:
        self.key = key
        self.version: SecretVersion | None = None
        # Ticket taken when the fetch that produced ``version`` started; a caller
        # may reuse a value only if it was fetched after the caller asked.
        self.fetched_ticket = 0
        self.expires_at = 0.0
        self.retry_at = 0.0
        self.failures = 0  # in a row, for the backoff
        self.refreshed_at: float | None = None  # wall clock of the last successful fetch
        self.lock = threading.Lock()
        self.dependents: set[Reference] = set()


class _Cached:
    __slots__ = ("resolved", "source")

    def __init__(self, source: _Source, resolved: ResolvedSecret) -> None:
        self.source = source
        self.resolved = resolved


def _source_key(ref: Reference) -> Reference:
    if isinstance(ref, AwsRef) and ref.json_key:
        return ref.whole_secret
    return ref


class SecretStore:
    """Resolves :class:`~app.secrets.refs.Reference` objects; thread-safe."""

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_CACHE_TTL,
        aws: AwsSecretsManagerBackend | None = None,
        files: FileBackend | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        replica_regions: Sequence[str] = (),
        stats: Stats | None = None,
    ) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self.ttl = ttl
        self._aws = aws
        # One set of counters per process's store: the AWS backend counts its calls into it.
        self.stats = stats or (aws.stats if aws is not None else Stats())
        self._seeded: dict[str, tuple[SecretVersion, float]] = {}
        self._attempts: dict[object, int] = {}
        self._causes: dict[object, dict[str, int]] = {}
        self._aws_args = (region, endpoint_url, tuple(replica_regions))
        self._files = files or FileBackend()
        self._cache: dict[Reference, _Cached] = {}
        self._sources: dict[Reference, _Source] = {}
        self._lock = threading.Lock()
        self._refreshing = False
        self._refresher: ThreadPoolExecutor | None = None
        self._tickets = itertools.count(1)
        self.clock = time.monotonic
        self.wall = time.time

    @property
    def aws(self) -> AwsSecretsManagerBackend:
        """The AWS backend, built on first use so file-only setups never build a client."""
        if self._aws is None:
            with self._lock:
                if self._aws is None:
                    from app.secrets.aws import AwsSecretsManagerBackend  # botocore: only once AWS is asked

                    region, endpoint, replicas = self._aws_args
                    self._aws = AwsSecretsManagerBackend(
                        default_region=region, endpoint_url=endpoint, replica_regions=replicas, stats=self.stats
                    )
        return self._aws

    def seed(self, versions: dict[str, tuple[SecretVersion, float]]) -> None:
        """Versions fetched elsewhere (app/prefetch.py), by the text of their source reference,
        with the wall-clock time of the fetch: the first load of those references uses them
        instead of asking the backend. Later refreshes fetch as usual."""
        for version, _ in versions.values():
            redact.register(version.value)
        with self._lock:
            self._seeded.update(versions)

    # -- reads -----------------------------------------------------------------------

    def get(self, ref: Reference, stage: str | None = None) -> ResolvedSecret:
        """The cached value of ``ref`` (at ``stage`` if given); loads it on first use."""
        if stage is not None and isinstance(ref, AwsRef):
            ref = ref.with_stage(stage)
        cached = self._cache.get(ref)
        if cached is None:
            return self.load([ref])[ref]
        if cached.source.expires_at <= self.clock():
            self._wake_refresher()
        return cached.resolved

    def load(self, refs: Iterable[Reference], *, fast: bool = False) -> dict[Reference, ResolvedSecret]:
        """Resolve ``refs`` now, in as few round trips as the backends allow.

        Raises the first :class:`ResolutionError` only after every reference was tried;
        :meth:`load_all` returns every error instead. ``fast``: short timeouts and one
        retry at most, for a read a request waits on (see :meth:`refresh`).
        """
        resolved, errors = self.load_all(refs, fast=fast)
        if errors:
            raise next(iter(errors.values()))
        return resolved

    def load_all(
        self, refs: Iterable[Reference], *, fast: bool = False
    ) -> tuple[dict[Reference, ResolvedSecret], dict[Reference, ResolutionError]]:
        refs = list(dict.fromkeys(refs))
        wanted = [r for r in refs if r not in self._cache]
        keys = list(dict.fromkeys(_source_key(r) for r in wanted))
        started = next(self._tickets)
        with self._lock:
            seeded = {k: self._seeded.pop(str(k)) for k in keys if str(k) in self._seeded}
        fetched: dict[Reference, Fetched] = {k: version for k, (version, _) in seeded.items()}
        fetched.update(self._fetch([k for k in keys if k not in seeded], fast=fast))
        errors: dict[Reference, ResolutionError] = {}
        now = self.clock()
        for ref in wanted:
            got = fetched[_source_key(ref)]
            if isinstance(got, ResolutionError):
                errors[ref] = got
                continue
            try:
                resolved = _derive(ref, got)
            except ResolutionError as exc:
                errors[ref] = exc
                continue
            with self._lock:
                source = self._sources.setdefault(_source_key(ref), _Source(_source_key(ref)))
                if source.version is None:
                    source.version, source.fetched_ticket = got, started
                    fetched_at = seeded[source.key][1] if source.key in seeded else self.wall()
                    # A seeded value expires a TTL after it was fetched, not after it was seeded.
                    source.expires_at = now + self.ttl - max(0.0, self.wall() - fetched_at)
                    source.refreshed_at = fetched_at
                source.dependents.add(ref)
                self._cache[ref] = _Cached(source, resolved)
        out = {r: self._cache[r].resolved for r in refs if r in self._cache}
        return out, errors

    def regions(self) -> list[str | None]:
        """The AWS regions a secret may be read in now: the primary, then its replicas (open circuits left out)."""
        return self.aws.regions.reachable()

    def refresh(self, ref: Reference, stage: str | None = None, region: str | None = None) -> ResolvedSecret:
        """Fetch ``ref`` again now (a consumer saw the cached value rejected); from ``region`` only, if given.

        Concurrent callers share fetches: a caller waits for the fetch under way and
        reuses its result if that fetch started after the caller asked (one that
        started earlier may predate the rotation the caller just saw); so ten callers
        make at most two fetches. A caller is a request waiting on the answer, so the fetch
        asks each region with the backend's ``fast`` patience: two attempts (a throttled call
        gets its retry) with short timeouts, never botocore's three 10-second ones.
        """
        if stage is not None and isinstance(ref, AwsRef):
            ref = ref.with_stage(stage)
        if region is not None:
            # One region's answer, for a caller walking the regions itself (a refused password,
            # with a replica that may lag a rotation): not cached, so it never hides the chain's.
            self._attempted(ref)
            got = self._fetch([_source_key(ref)], region, fast=True)[_source_key(ref)]
            if isinstance(got, ResolutionError):
                self._count_failure(ref, got)
                raise got
            return _derive(ref, got)
        if ref not in self._cache:
            return self.load([ref], fast=True)[ref]
        source = self._cache[ref].source
        asked = next(self._tickets)
        with source.lock:
            if source.fetched_ticket > asked:
                # A fetch that started after we asked finished while we waited: it
                # is as fresh as ours would be. (One that started before may be stale.)
                return self._cache[ref].resolved
            started = next(self._tickets)
            self._attempted(source.key)
            got = self._fetch([source.key], fast=True)[source.key]
            if isinstance(got, ResolutionError):
                self._count_failure(source.key, got)
                raise got
            self._apply(source, got, started)
        return self._cache[ref].resolved

    # -- background refresh ------------------------------------------------------

    def _wake_refresher(self) -> None:
        with self._lock:
            if self._refreshing:
                return
            self._refreshing = True
            if self._refresher is None:
                self._refresher = ThreadPoolExecutor(1, thread_name_prefix="secrets-refresh")
            self._refresher.submit(self._refresh_due)

    def _refresh_due(self) -> None:
        try:
            self.refresh_due()
        except Exception:  # pragma: no cover - a bug here must not kill the thread silently
            log.exception("secret refresh crashed")
        finally:
            with self._lock:
                self._refreshing = False

    def refresh_due(self) -> int:
        """Refresh every expired secret in one pass; returns how many were fetched."""
        now = self.clock()
        due = [s for s in list(self._sources.values()) if s.expires_at <= now and s.retry_at <= now]
        locked = [s for s in due if s.lock.acquire(blocking=False)]
        try:
            if not locked:
                return 0
            started = next(self._tickets)
            for source in locked:
                self._attempted(source.key)
            fetched = self._fetch([s.key for s in locked])
            for source in locked:
                got = fetched[source.key]
                if isinstance(got, ResolutionError):
                    self._failed(source, got)
                else:
                    self._apply(source, got, started)
            return len(locked)
        finally:
            for source in locked:
                source.lock.release()

    def _apply(self, source: _Source, got: SecretVersion, started: int) -> None:
        derived: dict[Reference, ResolvedSecret] = {}
        for ref in source.dependents:
            try:
                derived[ref] = _derive(ref, got)
            except ResolutionError as exc:
                # The new version lost a key we read: keep serving the last good value.
                self._failed(source, exc)
                return
        now = self.clock()
        with self._lock:
            if started < source.fetched_ticket:
                return  # a fetch that started later already applied a fresher value
            source.version, source.fetched_ticket = got, started
            source.expires_at = now + self.ttl
            source.refreshed_at = self.wall()
            source.failures, source.retry_at = 0, 0.0
            for ref, resolved in derived.items():
                self._cache[ref] = _Cached(source, resolved)

    def _failed(self, source: _Source, exc: ResolutionError) -> None:
        self._count_failure(source.key, exc)
        source.failures += 1
        delay = min(_MAX_BACKOFF, self.ttl, 2.0**source.failures)
        source.retry_at = self.clock() + random.uniform(delay / 2, delay)  # noqa: S311 - jitter, not crypto
        log.warning(
            "refreshing %s failed (%s, attempt %d); serving the last good value, next try in %.0f s",
            source.key,
            type(exc).__name__,
            source.failures,
            source.retry_at - self.clock(),
        )

    def versions(self) -> dict[str, tuple[SecretVersion, float]]:
        """Every fetched source's version and fetch time, by reference text (what :meth:`seed` takes)."""
        with self._lock:
            return {
                str(key): (source.version, source.refreshed_at)
                for key, source in self._sources.items()
                if source.version is not None and source.refreshed_at is not None
            }

    # -- health --------------------------------------------------------------------------

    def health(self, ref: Reference) -> Health | None:
        """How ``ref``'s value has been kept fresh; None until it has been loaded."""
        cached = self._cache.get(ref)
        if cached is None:
            return None
        source = cached.source
        version = source.version
        secret = _secret_of(ref)
        with self._lock:
            attempts = self._attempts.get(secret, 0)
            failures = dict(self._causes.get(secret, {}))
        return Health(
            refreshed_at=source.refreshed_at,
            created=version.created if version else None,
            region=cached.resolved.region,
            attempts=attempts,
            failures=failures,
            failing=source.failures > 0,
        )

    def _attempted(self, ref: Reference) -> None:
        with self._lock:
            secret = _secret_of(ref)
            self._attempts[secret] = self._attempts.get(secret, 0) + 1

    def _count_failure(self, ref: Reference, exc: ResolutionError) -> None:
        with self._lock:
            causes = self._causes.setdefault(_secret_of(ref), {})
            cause = cause_of(exc)
            causes[cause] = causes.get(cause, 0) + 1

    # -- plumbing ----------------------------------------------------------------------

    def _fetch(
        self, keys: Sequence[Reference], region: str | None = None, *, fast: bool = False
    ) -> dict[Reference, Fetched]:
        aws_keys = [k for k in keys if isinstance(k, AwsRef)]
        file_keys = [k for k in keys if isinstance(k, FileRef)]
        results: dict[Reference, Fetched] = {}
        if aws_keys:
            results.update(self.aws.fetch(aws_keys, region, fast=fast).items())
        if file_keys:
            results.update(self._files.fetch(file_keys).items())
        for value in results.values():
            if isinstance(value, SecretVersion):
                redact.register(value.value)
        return results

    def close(self) -> None:
        if self._refresher is not None:
            self._refresher.shutdown(wait=True, cancel_futures=True)
            self._refresher = None
        if self._aws is not None:
            self._aws.close()

    def __enter__(self) -> SecretStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _derive(ref: Reference, version: SecretVersion) -> ResolvedSecret:
    """Apply the reference's JSON key, if any, to a whole secret."""
    text = version.value
    if isinstance(ref, AwsRef) and ref.json_key:
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise SecretFormatError(
                f"{ref} asks for key '{ref.json_key}' but the secret is not a JSON object",
                reference=str(ref),
                fix="store the secret as JSON, or drop the key from the reference to use the whole string",
            )
        if ref.json_key not in data:
            keys = ", ".join(sorted(str(k) for k in data)) or "none"
            raise SecretFormatError(
                f"{ref}: the secret has no key '{ref.json_key}' (keys: {keys})",
                reference=str(ref),
                fix="use one of the keys listed, or add the key to the secret",
            )
        item = data[ref.json_key]
        text = item if isinstance(item, str) else json.dumps(item)
    return ResolvedSecret(SecretValue(text), version.version_id, str(ref), version.region)
