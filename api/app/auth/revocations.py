"""Revoked token ids (logout): PostgreSQL holds them, Redis answers the request path.

A logout writes the token id to ``revoked_tokens`` (with the token's expiry) and then
to Redis. A request asks Redis only: one ``MGET`` of the token's key and of a
*synced* marker. The marker says "Redis holds every revocation PostgreSQL has":

- marker present, key absent: not revoked;
- marker absent (Redis restarted empty, failed over, or the marker's period ran out):
  the answer comes from PostgreSQL, and one thread per process copies every
  unexpired revocation back into Redis, then sets the marker again.

If writing to Redis fails after PostgreSQL has the revocation, this process deletes
the marker as soon as it reaches Redis again, so every replica rebuilds; the marker
also expires every ``ECOMIND_REVOCATION_RESYNC_SECONDS``, which bounds any other gap.
While Redis is unreachable, every check goes to PostgreSQL. Without ``REDIS_URL``
PostgreSQL answers every check (one primary-key look-up).

Redis must never evict: a revocation key evicted under memory pressure while the marker
stays (both carry a TTL, so ``volatile-*`` policies may take either) makes a logged-out
token work again. :func:`eviction_check` is the one check of ``maxmemory-policy``; the API
runs it at start (a warning line with the fix) and ``ecomind doctor`` reports it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, cast
from urllib.parse import urlsplit

import redis
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from app.data.tables import RevokedToken

__all__ = ["Revocations", "eviction_check"]

log = logging.getLogger("app.auth.revocations")

# After Redis failed, skip it for this long rather than wait on a dead socket per request.
REDIS_RETRY_SECONDS = 5.0


# The only maxmemory-policy under which Redis never drops a key it was given.
SAFE_POLICY = "noeviction"
ELASTICACHE_FIX = (
    "aws elasticache modify-cache-parameter-group --cache-parameter-group-name GROUP "
    f"--parameter-name-values ParameterName=maxmemory-policy,ParameterValue={SAFE_POLICY}"
    "   # GROUP: the cluster's own parameter group (a default one cannot be changed)"
)


@dataclass(frozen=True)
class EvictionCheck:
    """What Redis's ``maxmemory-policy`` means for logouts; ``status`` in the doctor's words."""

    status: Literal["ok", "fail", "not_checked"]
    detail: str
    fix: str = ""


def _redis_cli(url: str) -> str:
    """The redis-cli command that sets the safe policy on the Redis of ``url``, password never shown."""
    parts = urlsplit(url)
    command = ["redis-cli", "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379)]
    if parts.scheme == "rediss":
        command.append("--tls")
    if parts.username and parts.password:
        command += ["--user", parts.username]
    if parts.password:
        command.append("--askpass")  # asks for the password of REDIS_URL
    return " ".join([*command, "CONFIG", "SET", "maxmemory-policy", SAFE_POLICY])


def eviction_check(client: redis.Redis, url: str) -> EvictionCheck:
    """Whether Redis at ``url`` may evict a revocation: its ``maxmemory-policy``, with the fix."""
    try:
        found = cast(dict[str, str], client.config_get("maxmemory-policy"))
    except redis.ResponseError as exc:  # ElastiCache, and servers that rename CONFIG, refuse it
        return EvictionCheck(
            "not_checked",
            f"Redis refused CONFIG GET maxmemory-policy ({str(exc)[:80]}); logouts need {SAFE_POLICY}",
            ELASTICACHE_FIX,
        )
    except (redis.RedisError, OSError) as exc:
        return EvictionCheck("not_checked", f"Redis did not answer ({type(exc).__name__})")
    policy = found.get("maxmemory-policy", "")
    if policy == SAFE_POLICY:
        return EvictionCheck("ok", f"maxmemory-policy {policy}: no revocation is ever evicted")
    return EvictionCheck(
        "fail",
        f"maxmemory-policy {policy}: under memory pressure Redis may evict a logout's revocation, "
        f"and the logged-out token works again; logouts need {SAFE_POLICY}",
        f"{_redis_cli(url)}   # and in redis.conf, or ElastiCache: {ELASTICACHE_FIX}",
    )


class Revocations:
    PREFIX = "ecomind:revoked:"
    SYNCED = "ecomind:revoked:synced"

    def __init__(self, sessions: sessionmaker[Session], client: redis.Redis | None, resync_seconds: int) -> None:
        self.sessions = sessions
        self.client = client
        self.resync_seconds = resync_seconds
        self._reload = threading.Lock()
        self._stale = False  # a revocation reached PostgreSQL but not Redis
        self._redis_down_until = 0.0

    def check_eviction(self, url: str) -> None:
        """Say at start, in one warning line with the fix, when Redis may evict revocations; on a
        thread of its own, so a Redis that does not answer never holds up the start."""
        client = self.client
        if client is None:
            return

        def check() -> None:
            found = eviction_check(client, url)
            if found.status == "fail":
                log.warning("revocations: %s; fix: %s", found.detail, found.fix)

        threading.Thread(target=check, name="redis-eviction-check", daemon=True).start()

    # -- writes -----------------------------------------------------------------------

    def revoke(self, jti: str, expires_at: datetime) -> None:
        """Durable first (PostgreSQL), then the fast path; a Redis failure is repaired later."""
        with self.sessions() as session:
            session.execute(
                insert(RevokedToken)
                .values(jti=jti, expires_at=expires_at)
                .on_conflict_do_nothing(index_elements=["jti"])
            )
            session.commit()
        client = self._redis()
        if client is None:
            self._stale = self.client is not None
            return
        ttl = max(1, int((expires_at - datetime.now(UTC)).total_seconds()) + 1)
        try:
            client.set(self.PREFIX + jti, b"1", ex=ttl)
        except redis.RedisError as exc:
            self._redis_failed(exc)
            self._stale = True

    # -- reads ------------------------------------------------------------------------

    def is_revoked(self, jti: str) -> bool:
        client = self._redis()
        if client is not None:
            try:
                synced, revoked = cast(list[bytes | None], client.mget([self.SYNCED, self.PREFIX + jti]))
            except redis.RedisError as exc:
                self._redis_failed(exc)
            else:
                if revoked is not None:
                    return True
                if synced is not None:
                    return False
                if self._reload.acquire(blocking=False):
                    try:
                        return jti in self._copy_to_redis(client)
                    finally:
                        self._reload.release()
        return self._in_database(jti)

    def _in_database(self, jti: str) -> bool:
        with self.sessions() as session:
            found = session.scalar(
                select(RevokedToken.jti).where(RevokedToken.jti == jti, RevokedToken.expires_at > datetime.now(UTC))
            )
        return found is not None

    def _copy_to_redis(self, client: redis.Redis) -> set[str]:
        """Every unexpired revocation into Redis, then the marker; returns the ids copied."""
        now = datetime.now(UTC)
        with self.sessions() as session:
            # Rows an hour past their expiry are of no use to anyone: drop them here, once per resync.
            session.execute(delete(RevokedToken).where(RevokedToken.expires_at < now - timedelta(hours=1)))
            session.commit()
            rows = session.execute(
                select(RevokedToken.jti, RevokedToken.expires_at).where(RevokedToken.expires_at > now)
            ).all()
        try:
            pipe = client.pipeline(transaction=False)
            for jti, expires_at in rows:
                pipe.set(self.PREFIX + jti, b"1", ex=max(1, int((expires_at - now).total_seconds()) + 1))
            pipe.set(self.SYNCED, b"1", ex=self.resync_seconds)
            pipe.execute()
            log.info("revocations copied from PostgreSQL to Redis (%d)", len(rows))
        except redis.RedisError as exc:
            self._redis_failed(exc)
        return {jti for jti, _ in rows}

    # -- Redis health -----------------------------------------------------------------

    def _redis(self) -> redis.Redis | None:
        """The client when Redis is worth trying; repairs a missed write first."""
        if self.client is None or time.monotonic() < self._redis_down_until:
            return None
        if self._stale:
            try:
                self.client.delete(self.SYNCED)  # every replica rebuilds from PostgreSQL
            except redis.RedisError as exc:
                self._redis_failed(exc)
                return None
            self._stale = False
            log.warning("a revocation missed Redis; Redis's copy will be rebuilt from PostgreSQL")
        return self.client

    def _redis_failed(self, exc: redis.RedisError) -> None:
        if time.monotonic() >= self._redis_down_until:
            log.warning("revocations: Redis unavailable (%s); answering from PostgreSQL", type(exc).__name__)
        self._redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
