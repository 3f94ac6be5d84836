"""AWS Secrets Manager backend: batched and single reads, by region, with their clients' patience.

What an error means is app/secrets/aws_errors.py's answer (:func:`translate_error`): no code is
read here. Clients are made as app/secrets/clients.py makes them; the regions are walked by
app/secrets/failover.py.

Round trips are what cost: a cold start fetches every plain reference with
``BatchGetSecretValue`` (20 ids a call, one call per region), and only references
pinned to a stage or a version id go through ``GetSecretValue``, concurrently.

Throttling is retried by botocore's ``standard`` retry mode (jittered exponential
backoff, the behaviour AWS's SDKs share); a batch that is still throttled after
that, or that the role may not call, falls back to concurrent single reads.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import botocore.exceptions
import botocore.session
from botocore.config import Config

from app.secrets import emulator
from app.secrets.aws_errors import batch_error, batch_refused, call_result, error_code, translate_error
from app.secrets.base import Fetched, SecretBackend, SecretVersion
from app.secrets.clients import checked_endpoint, client_config, new_session
from app.secrets.endpoints import on_this_machine, secretsmanager_endpoint
from app.secrets.environment import arn_in_region
from app.secrets.errors import (
    BadCredentials,
    NoCredentials,
    NoRegion,
    ResolutionError,
    SecretAccessDenied,
    SecretDeleted,
    SecretNotFound,
    scheduled_deletion,
)
from app.secrets.failover import Patience, failover, regional_failure
from app.secrets.refs import AwsRef
from app.secrets.regions import DEFAULT_COOLDOWN, PROBE_TIMEOUTS, RegionChain, region_option
from app.secrets.stats import Stats
from app.telemetry import SM_CALLS

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
else:
    SecretsManagerClient = Any

__all__ = [
    "AwsSecretsManagerBackend",
    "emulator_answer",
    "in_region",
    "regions_holding",
]

log = logging.getLogger("app.secrets.aws")

BATCH_SIZE = 20  # BatchGetSecretValue accepts at most 20 ids in SecretIdList
_CURRENT = "AWSCURRENT"


# How long a read may take (:data:`Patience`), by who waits on it:
# - full: a start or a background refresh; botocore's standard retries (3 attempts);
# - probe: a region not yet known to answer, in a failover; one attempt, short timeouts;
# - fast: a request waiting on a value read again (a refused password, a JWT key id it
#   does not know, the previous JWT key); two attempts (a throttled call gets its
#   retry), 2 s to connect and 3 s to read, so a Secrets Manager that hangs costs the
#   request about 6 s, not botocore's three 10-second attempts.
PATIENCE: dict[str, Callable[[], Config]] = {
    "full": client_config,
    "probe": lambda: client_config(1, *PROBE_TIMEOUTS),
    "fast": lambda: client_config(2, 2.0, 3.0),
}


class AwsSecretsManagerBackend(SecretBackend[AwsRef]):
    """Keys are references without a JSON key: a whole secret at a stage or version."""

    def __init__(
        self,
        *,
        default_region: str | None,
        endpoint_url: str | None = None,
        session: botocore.session.Session | None = None,
        max_workers: int = 8,
        replica_regions: Sequence[str] = (),
        cooldown: float = DEFAULT_COOLDOWN,
        stats: Stats | None = None,
    ) -> None:
        self._default_region = default_region
        self.stats = stats or Stats()
        self._endpoint_url = endpoint_url
        self._session = session
        self.regions = RegionChain(default_region, replica_regions, cooldown=cooldown)
        self._clients: dict[tuple[str | None, Patience], SecretsManagerClient] = {}
        self._lock = threading.Lock()
        self._max_workers = max_workers
        self._pool: ThreadPoolExecutor | None = None

    # -- clients -------------------------------------------------------------------

    def client(self, region: str | None = None, *, patience: Patience = "full") -> SecretsManagerClient:
        """The client of ``region``, by how long a read may take (:data:`PATIENCE`)."""
        region = region or self._default_region
        cached = self._clients.get((region, patience))
        if cached is not None:
            return cached
        with self._lock:
            if (region, patience) not in self._clients:
                if self._session is None:
                    # One session for every client: botocore loads the service model once
                    # (a replica region's client costs a few ms and no second copy in memory).
                    self._session = new_session()
                session = self._session
                config = PATIENCE[patience]()
                kwargs: dict[str, Any] = {"region_name": region, "config": config}
                endpoint = checked_endpoint(self._endpoint_url or secretsmanager_endpoint())
                if self._endpoint_url:
                    kwargs["endpoint_url"] = endpoint
                client = session.create_client("secretsmanager", **kwargs)
                where = str(region or client.meta.region_name)
                client.meta.events.register("after-call.secrets-manager", functools.partial(self._counted, where))
                client.meta.events.register(
                    "after-call-error.secrets-manager", functools.partial(self._counted_error, where)
                )
                self._clients[(region, patience)] = cast("SecretsManagerClient", client)
            return self._clients[(region, patience)]

    def _counted(self, region: str, http_response: Any, parsed: Mapping[str, Any], model: Any, **_: Any) -> None:
        """botocore's after-call hook: one call made (its retries inside), by operation and result."""
        result = "ok"
        if http_response.status_code >= 300:
            result = call_result(parsed)
        self.stats.inc(SM_CALLS, str(model.name), result, region)

    def _counted_error(self, region: str, event_name: str = "", **_: Any) -> None:
        """botocore's after-call-error hook: no answer at all (connection refused, timed out)."""
        self.stats.inc(SM_CALLS, event_name.rsplit(".", 1)[-1], "unreachable", region)

    def endpoint(self, region: str | None = None) -> str:
        try:
            return str(self.client(region).meta.endpoint_url)
        except botocore.exceptions.BotoCoreError:
            return f"secretsmanager.{region or self._default_region}"

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._max_workers, thread_name_prefix="secrets-get")
            return self._pool

    # -- fetching ------------------------------------------------------------------

    def fetch(self, keys: Sequence[AwsRef], region: str | None = None, *, fast: bool = False) -> dict[AwsRef, Fetched]:
        """Every key's whole secret; from ``region`` only when given, else along the region chain.

        ``fast``: for a read a request waits on (a rejected value read again): every region
        is asked with ``PATIENCE["fast"]``, two attempts (a throttled call gets its retry)
        with short timeouts, so a Secrets Manager that hangs costs the request seconds, not
        botocore's three 10-second attempts."""
        by_home: dict[str | None, list[AwsRef]] = defaultdict(list)
        for key in dict.fromkeys(keys):
            by_home[key.region or self._default_region].append(key)
        results: dict[AwsRef, Fetched] = {}
        for home, group in by_home.items():
            chain: list[str | None] = [region] if region is not None else self.regions.chain(home)
            results.update(self._failover(chain, group, home, fast))
        for key, got in results.items():
            if isinstance(got, SecretDeleted):
                results[key] = self._deletion_date(key, got)
        return results

    def _failover(
        self, chain: list[str | None], keys: list[AwsRef], home: str | None, fast: bool = False
    ) -> dict[AwsRef, Fetched]:
        """Ask each region in turn for the keys the previous one could not answer (:func:`failover`)."""
        return failover(chain, keys, home, self.regions, self._fetch_in, fast)

    def _fetch_in(self, region: str | None, keys: list[AwsRef], patience: Patience) -> dict[AwsRef, Fetched]:
        """The keys, read in ``region`` (an ARN's region rewritten when ``region`` is a replica's)."""
        local = {in_region(k, region): k for k in keys}
        plain = [k for k in local if not (k.version_stage or k.version_id)]
        singles = [k for k in local if k.version_stage or k.version_id]
        chunks = [plain[start : start + BATCH_SIZE] for start in range(0, len(plain), BATCH_SIZE)]
        if len(chunks) > 1:
            # More than 20 secrets: one round trip, not one per batch.
            answers = list(self._executor().map(lambda c: self._batch(region, c, patience), chunks))
        else:
            answers = [self._batch(region, c, patience) for c in chunks]
        results: dict[AwsRef, Fetched] = {}
        for batch_results, retry in answers:
            results.update(batch_results)
            singles.extend(retry)
        results.update(self._get_many(singles, region, patience))
        tagged: dict[AwsRef, Fetched] = {}
        for key, got in results.items():
            if isinstance(got, SecretVersion):
                got = dataclasses.replace(got, region=region or self._default_region)
            tagged[local[key]] = got
        return tagged

    def _deletion_date(self, key: AwsRef, err: SecretDeleted) -> SecretDeleted:
        """The same error with the date the secret goes (one DescribeSecret, on this failure path only),
        and the restore command in the secret's region."""
        region, deleted = key.region or self._default_region, None
        try:
            client = self.client(key.region)
            region = region or client.meta.region_name
            deleted = client.describe_secret(SecretId=key.secret_id).get("DeletedDate")
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
            pass
        fix = f"ecomind secrets restore {key.secret_id} {region_option(region)}"
        dated = SecretDeleted(f"{key} is {scheduled_deletion(deleted)}", reference=err.reference, fix=fix)
        dated.__cause__ = err.__cause__
        return dated

    def _batch(
        self, region: str | None, chunk: list[AwsRef], patience: Patience = "full"
    ) -> tuple[dict[AwsRef, Fetched], list[AwsRef]]:
        """One BatchGetSecretValue; returns what it answered and what to read singly."""
        if len(chunk) == 1:
            # A batch of one costs the same round trip and gives less precise errors.
            return {}, [chunk[0]]
        try:
            client = self.client(region, patience=patience)
            response = client.batch_get_secret_value(SecretIdList=[k.secret_id for k in chunk])
        except botocore.exceptions.ClientError as exc:
            code = error_code(exc)
            if batch_refused(exc):
                # Throttled past the retries, or a role allowed GetSecretValue but not
                # BatchGetSecretValue: single reads still start the process.
                log.warning("BatchGetSecretValue failed (%s); reading %d secrets one by one", code, len(chunk))
                return {}, list(chunk)
            err = translate_error(exc, ", ".join(str(k) for k in chunk), self.endpoint(region))
            if not (regional_failure(err) or isinstance(err, NoCredentials | BadCredentials | NoRegion)):
                # What concerns one secret (not found, no value at its stage, not decrypted) AWS
                # reports in the answer's Errors; a batch refused whole for it (an emulator's
                # AWSCURRENT with no value) is read again one by one, each secret with its answer.
                log.warning("BatchGetSecretValue failed (%s); reading %d secrets one by one", code, len(chunk))
                return {}, list(chunk)
            return {k: err for k in chunk}, []
        except botocore.exceptions.BotoCoreError as exc:
            err = translate_error(exc, ", ".join(str(k) for k in chunk), self.endpoint(region))
            return {k: err for k in chunk}, []

        results: dict[AwsRef, Fetched] = {}
        retry: list[AwsRef] = []
        pending = {k.secret_id: k for k in chunk}
        on_emulator = on_this_machine(str(client.meta.endpoint_url))  # its workarounds apply there only
        for item in response.get("SecretValues", []):
            key = _match(pending, item.get("ARN", ""), item.get("Name", ""))
            if key is None:
                continue
            stages = tuple(item.get("VersionStages", ()))
            if on_emulator and emulator.stale_batch_answer(item):
                retry.append(key)
                continue
            results[key] = SecretVersion(_secret_text(item), item.get("VersionId"), stages, created=_created(item))
        for error in response.get("Errors", []):
            key = pending.pop(error.get("SecretId", ""), None)
            if key is None:
                continue
            answered = batch_error(error, str(key), lambda: self.endpoint(region))
            if answered is None:
                retry.append(key)
            else:
                results[key] = answered
        for key in pending.values():
            results.setdefault(key, SecretNotFound(f"{key} was not returned", reference=str(key)))
        return results, retry

    def _get_many(self, keys: list[AwsRef], region: str | None, patience: Patience) -> dict[AwsRef, Fetched]:
        if not keys:
            return {}
        if len(keys) == 1:
            return {keys[0]: self.get(keys[0], region, patience)}
        futures = {key: self._executor().submit(self.get, key, region, patience) for key in keys}
        return {key: future.result() for key, future in futures.items()}

    def get(self, key: AwsRef, region: str | None = None, patience: Patience = "full") -> Fetched:
        """One GetSecretValue for ``key`` (stage defaults to AWSCURRENT, explicitly)."""
        kwargs: dict[str, Any] = {"SecretId": key.secret_id}
        if key.version_id:
            kwargs["VersionId"] = key.version_id
        else:
            kwargs["VersionStage"] = key.version_stage or _CURRENT
        region = region or key.region
        try:
            item = self.client(region, patience=patience).get_secret_value(**kwargs)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            return translate_error(exc, str(key), self.endpoint(region))
        stages = tuple(item.get("VersionStages", ()))
        return SecretVersion(_secret_text(item), item.get("VersionId"), stages, created=_created(item))


def _created(item: Mapping[str, Any]) -> float | None:
    created = item.get("CreatedDate")
    return created.timestamp() if isinstance(created, datetime) else None


def emulator_answer(error: ResolutionError, client: SecretsManagerClient, secret_id: str | None) -> ResolutionError:
    """An emulator's 500 said as AWS would have answered (:func:`app.secrets.emulator.answer`)."""
    return emulator.answer(error, client, secret_id, translate_error)


def regions_holding(
    secret_id: str, regions: Sequence[str], client_in: Callable[[str], SecretsManagerClient]
) -> tuple[list[str], int]:
    """The regions among ``regions`` where a secret of that name exists (DescribeSecret, 8 at a
    time), and how many of them could be asked: a denial or no answer cannot tell."""

    def look(region: str) -> str | None:
        try:
            client_in(region).describe_secret(SecretId=secret_id)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            error = translate_error(exc, secret_id, region)
            if isinstance(error, SecretAccessDenied) and not isinstance(error, NoCredentials | BadCredentials):
                return "unasked"
            return "unasked" if isinstance(exc, botocore.exceptions.BotoCoreError) else None
        return region

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(look, regions))
    return [a for a in answers if a not in (None, "unasked")], sum(a != "unasked" for a in answers)


def in_region(key: AwsRef, region: str | None) -> AwsRef:
    """``key`` as read in ``region``: a replica has the primary's name, and its ARN differs by region only."""
    if region is None or key.region in (None, region):
        return key
    return dataclasses.replace(key, secret_id=arn_in_region(key.secret_id, region), region=region, text="")


def _match(pending: dict[str, AwsRef], arn: str, name: str) -> AwsRef | None:
    for candidate in (name, arn):
        if candidate in pending:
            return pending.pop(candidate)
    for secret_id in list(pending):
        # A partial ARN (no -XXXXXX suffix) names the same secret as the full one.
        if secret_id.startswith("arn:") and arn.startswith(secret_id):
            return pending.pop(secret_id)
    return None


def _secret_text(item: Any) -> str:
    if "SecretString" in item:
        return str(item["SecretString"])
    binary = item.get("SecretBinary", b"")
    return binary.decode("utf-8") if isinstance(binary, bytes | bytearray) else str(binary)
