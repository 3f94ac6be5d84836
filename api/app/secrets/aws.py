"""AWS Secrets Manager backend, and the one place where botocore errors are translated.

Clients come from botocore, boto3's core, directly: importing boto3 also imports
s3transfer and costs tens of milliseconds that every ``ecomind run`` in front of a
migration or an entrypoint would pay for nothing.

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
import os
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, cast

import botocore.exceptions
import botocore.session
from botocore.config import Config

from app.secrets import emulator
from app.secrets.base import Fetched, SecretBackend, SecretVersion
from app.secrets.endpoints import on_this_machine, secretsmanager_endpoint
from app.secrets.environment import arn_in_region
from app.secrets.errors import (
    BadCredentials,
    CredentialsConfigError,
    EmulatorFailed,
    ExpiredCredentials,
    InvalidAccessKey,
    InvalidEndpoint,
    InvalidRegion,
    MalformedReference,
    NoCredentials,
    NoRegion,
    ResolutionError,
    SecretAccessDenied,
    SecretDeleted,
    SecretNotFound,
    SecretsManagerUnreachable,
    SecretsThrottled,
    SignatureMismatch,
    scheduled_deletion,
)
from app.secrets.refs import AwsRef, parse_reference
from app.secrets.regions import DEFAULT_COOLDOWN, PROBE_TIMEOUTS, REGION_PLACEHOLDER, RegionChain, region_option
from app.secrets.stats import Stats
from app.telemetry import SM_CALLS

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
else:
    SecretsManagerClient = Any

__all__ = [
    "AwsSecretsManagerBackend",
    "client_config",
    "emulator_answer",
    "error_code",
    "in_region",
    "new_session",
    "regional_failure",
    "regions_holding",
    "secretsmanager_client",
    "translate_error",
]

log = logging.getLogger("app.secrets.aws")

BATCH_SIZE = 20  # BatchGetSecretValue accepts at most 20 ids in SecretIdList
_CURRENT = "AWSCURRENT"
# Denied by a policy. A bare HTTP 403 without a code says no more than that.
_DENIED_CODES = {"AccessDeniedException", "AccessDenied", "403"}
# Refused before any policy is read: the credentials themselves (Secrets Manager's codes, then STS's).
_BAD_KEY_CODES = {"UnrecognizedClientException", "InvalidClientTokenId"}
_BAD_SIGNATURE_CODES = {"InvalidSignatureException", "SignatureDoesNotMatch"}
_EXPIRED_CODES = {"ExpiredTokenException", "ExpiredToken"}
_THROTTLED_CODES = {"ThrottlingException", "Throttling", "TooManyRequestsException"}


def secretsmanager_client(region: str | None = None, endpoint_url: str | None = None) -> SecretsManagerClient:
    """A plain client with this layer's timeouts and retries (for the CLI and rotation handlers)."""
    client = new_session().create_client(
        "secretsmanager",
        region_name=region or os.environ.get("AWS_REGION"),
        endpoint_url=checked_endpoint(endpoint_url or secretsmanager_endpoint()),
        config=client_config(),
    )
    return cast("SecretsManagerClient", client)


def checked_endpoint(endpoint: str | None) -> str | None:
    """``endpoint``, when botocore takes it; else the configuration error it is, naming the
    variable that holds it (botocore would raise a bare ValueError making the client)."""
    from botocore.utils import is_valid_endpoint_url, is_valid_ipv6_endpoint_url

    if not endpoint or is_valid_endpoint_url(endpoint) or is_valid_ipv6_endpoint_url(endpoint):
        return endpoint
    variable = next(
        (name for name in ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL") if os.environ.get(name) == endpoint),
        None,
    )
    said = f"{endpoint!r} is not a URL: an endpoint override is http(s)://HOST[:PORT]"
    if variable is None:
        raise InvalidEndpoint(f"the endpoint override {said}", fix="ecomind doctor")
    raise InvalidEndpoint(
        said,
        fix=f"unset {variable}   # Secrets Manager's own endpoint; for an emulator on this machine: "
        f"export {variable}=http://127.0.0.1:PORT",
        variable=variable,
    )


def new_session() -> botocore.session.Session:
    """A botocore session: credentials, region and endpoints resolved as boto3 resolves them."""
    return botocore.session.get_session()


def client_config(attempts: int = 3, connect_timeout: float = 3, read_timeout: float = 10) -> Config:
    """botocore's standard retries, ``attempts`` in all (the first included), and short timeouts.

    Short connect timeout: an unreachable endpoint at start must fail fast, not after
    botocore's default 60 s per attempt. (``total_max_attempts`` counts the first
    attempt; botocore's ``max_attempts`` would count retries only.)
    """
    return Config(
        retries={"mode": "standard", "total_max_attempts": attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=16,
    )


# How long a read may take, by who waits on it:
# - full: a start or a background refresh; botocore's standard retries (3 attempts);
# - probe: a region not yet known to answer, in a failover; one attempt, short timeouts;
# - fast: a request waiting on a value read again (a refused password, a JWT key id it
#   does not know, the previous JWT key); two attempts (a throttled call gets its
#   retry), 2 s to connect and 3 s to read, so a Secrets Manager that hangs costs the
#   request about 6 s, not botocore's three 10-second attempts.
Patience = Literal["full", "probe", "fast"]
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
            error = parsed.get("Error", {})
            result = _call_result(str(error.get("Code", "")), str(error.get("Message", "")))
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
        """Ask each region in turn for the keys the previous one could not answer.

        A region moves a key on when it failed for a regional reason (unreachable,
        throttled), or when it is a replica region without the secret (a replica being
        added or removed, or one that lags): only the home region's "not found" is the
        secret's. Access denied or a bad key stop at once: they are the same everywhere."""
        pending, out = list(keys), {}
        failures: dict[AwsRef, list[tuple[str | None, Fetched]]] = defaultdict(list)
        for region in chain:
            if not pending:
                break
            probe = len(chain) > 1 and self.regions.probe(region)
            patience: Patience = "fast" if fast else "probe" if probe else "full"
            got = self._fetch_in(region, pending, patience)
            throttled = [k for k in pending if isinstance(got[k], SecretsThrottled)]
            if patience == "probe" and throttled:
                # Throttled is not unreachable: botocore's retries get their turn before a failover.
                got.update(self._fetch_in(region, throttled, "full"))
            regional = [k for k in pending if regional_failure(got[k])]
            absent = [] if region == home else [k for k in pending if isinstance(got[k], SecretNotFound)]
            moving = regional + absent
            out.update({k: got[k] for k in pending if k not in moving})
            for key in moving:
                failures[key].append((region, got[key]))
            if regional:
                if len(chain) > 1:
                    self.regions.failed(region)
                    log.warning(
                        "Secrets Manager in %s failed (%s) for %d secret(s); asking the next region",
                        region,
                        type(got[regional[0]]).__name__,
                        len(regional),
                    )
            else:
                self.regions.succeeded(region)
            if absent:
                log.warning("%d secret(s) have no replica in %s; asking the next region", len(absent), region)
            pending = moving
        for key in pending:
            tried = failures[key]
            if len(tried) == 1:
                out[key] = tried[0][1]
                continue
            where = ", ".join(f"{r} ({_outcome(got)})" for r, got in tried)
            failed = [got for _, got in tried if isinstance(got, EmulatorFailed)]
            if len(failed) == len(tried):
                # One emulator answers for every region: its failure, whichever region is asked.
                out[key] = EmulatorFailed(
                    f"{failed[0].message} (and in every region asked: {where})",
                    reference=str(key),
                    fix=emulator.FIX,
                )
                continue
            out[key] = SecretsManagerUnreachable(
                f"Secrets Manager could not serve {key} in any region asked: {where}",
                reference=str(key),
                fix="ecomind doctor   # then check each region's endpoint (VPC endpoint or NAT route)",
            )
        return out

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
            code = _code(exc)
            if code in _THROTTLED_CODES or code in _DENIED_CODES:
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
            code = error.get("ErrorCode", "")
            if code in _THROTTLED_CODES:
                retry.append(key)
            else:
                results[key] = _from_code(code, error.get("Message", ""), str(key), self.endpoint(region))
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


def _call_result(code: str, message: str = "") -> str:
    """The ``result`` label of a call that Secrets Manager answered with an error: the same
    kind as the error the read raises (:func:`_from_code`), so the calls and the refresh
    failures agree on a cause."""
    if code in _THROTTLED_CODES:
        return "throttled"
    if code in _DENIED_CODES or code in _BAD_KEY_CODES | _BAD_SIGNATURE_CODES | _EXPIRED_CODES:
        return "denied"
    if code == "ResourceNotFoundException" or _scheduled_for_deletion(code, message):
        return "not_found"
    return "error"


def _scheduled_for_deletion(code: str, message: str) -> bool:
    return code == "InvalidRequestException" and ("deletion" in message.lower() or "deleted" in message.lower())


def _created(item: Mapping[str, Any]) -> float | None:
    created = item.get("CreatedDate")
    return created.timestamp() if isinstance(created, datetime) else None


def _outcome(got: Fetched) -> str:
    """What a region answered, in a word or two, for a message that lists the regions asked."""
    if isinstance(got, SecretsThrottled):
        return "throttled"
    if isinstance(got, EmulatorFailed):
        return "emulator failed"
    if isinstance(got, SecretNotFound):
        return "no replica"
    return "unreachable"


def regional_failure(got: Fetched) -> bool:
    """A failure of the region, not of the secret: another region may answer."""
    return isinstance(got, SecretsManagerUnreachable | SecretsThrottled)


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


def _code(exc: botocore.exceptions.ClientError) -> str:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if not code and status == 403:
        return "403"
    if code == "403" and on_this_machine(secretsmanager_endpoint()):
        return emulator.code_in_403(str(error.get("Message", ""))) or code
    return code


def error_code(exc: BaseException) -> str:
    """The code AWS answered, for a message that names it ("" when none): what it means is
    :func:`translate_error`'s verdict, never a comparison with this."""
    return _code(exc) if isinstance(exc, botocore.exceptions.ClientError) else ""


def translate_error(exc: BaseException, reference: str, endpoint: str) -> ResolutionError:
    """Map a boto3/botocore exception to the secret layer's error tree."""
    if isinstance(exc, botocore.exceptions.ClientError):
        message = str(exc.response.get("Error", {}).get("Message", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if status >= 500 and (on_this_machine(endpoint) or on_this_machine(secretsmanager_endpoint())):
            err: ResolutionError = EmulatorFailed(
                f"the emulator at {endpoint or secretsmanager_endpoint()} answered {status} "
                f"({_code(exc) or 'no code'}) while reading {reference}: the emulator failed, not a region",
                reference=reference,
                fix=emulator.FIX,
            )
        elif status >= 500:
            err = SecretsManagerUnreachable(
                f"Secrets Manager at {endpoint} answered {status} ({_code(exc) or 'no code'}) "
                f"while reading {reference}",
                reference=reference,
                fix="ecomind doctor   # a server error: another region may answer (SECRETS_REPLICA_REGIONS)",
            )
        else:
            err = _from_code(_code(exc), message, reference, endpoint)
            operation = getattr(exc, "operation_name", "")
            if type(err) is SecretAccessDenied and operation not in ("", "GetSecretValue", "BatchGetSecretValue"):
                # Not a read of a value: the doctor's statement would not cover it. Name the action
                # and who may call it, never a grant: widening a task role is not the fix.
                err = SecretAccessDenied(
                    f"access to {reference} denied: secretsmanager:{operation}",
                    reference=reference,
                    fix=f"run this as a role that may call secretsmanager:{operation} on this secret: the operator "
                    "who provisioned the secrets (docs/troubleshooting.md says who may run which command)",
                )
    elif isinstance(exc, botocore.exceptions.InvalidRegionError):
        err = _invalid_region(str(exc.kwargs.get("region_name", "")), reference)
    elif isinstance(exc, _CREDENTIALS_CONFIG_ERRORS):
        err = _credentials_config_error(exc, reference)
    elif isinstance(exc, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError):
        err = NoCredentials(
            f"no AWS credentials found to read {reference}",
            reference=reference,
            fix="export AWS_PROFILE=NAME   # locally; in ECS or EKS attach a task role or an IRSA role",
        )
    elif isinstance(exc, botocore.exceptions.NoRegionError):
        err = NoRegion(
            f"no AWS region to read {reference}",
            reference=reference,
            fix=f"export AWS_REGION={REGION_PLACEHOLDER}   # the region of the secrets (or use a full ARN)",
        )
    elif isinstance(
        exc,
        botocore.exceptions.EndpointConnectionError
        | botocore.exceptions.ConnectTimeoutError
        | botocore.exceptions.ReadTimeoutError
        | botocore.exceptions.SSLError
        | botocore.exceptions.ProxyConnectionError
        | botocore.exceptions.ConnectionClosedError,
    ):
        err = SecretsManagerUnreachable(
            f"Secrets Manager at {endpoint} is unreachable ({type(exc).__name__}) while reading {reference}",
            reference=reference,
            fix="ecomind doctor   # then check AWS_REGION / AWS_ENDPOINT_URL, the VPC endpoint or NAT route",
        )
    else:
        err = ResolutionError(
            f"reading {reference} failed ({type(exc).__name__})",
            reference=reference,
            fix="ecomind doctor",
        )
    err.__cause__ = exc
    return err


def _invalid_region(region: str, reference: str) -> InvalidRegion:
    """A region botocore refuses to make a client for (a blank in it, say): the variable or
    option it came from, and the fix; the region stripped of blanks when that is one."""
    variable = "AWS_REGION" if os.environ.get("AWS_REGION") == region else "the region given (--region)"
    stripped = region.strip()
    if stripped != region and re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d+", stripped):
        fix = f"export AWS_REGION={stripped}   # without the blanks"
    else:
        fix = f"export AWS_REGION={REGION_PLACEHOLDER}   # a region such as us-east-1"
    return InvalidRegion(
        f"{region!r} ({variable}) is not a region name: letters, digits and dashes, such as us-east-1 "
        f"(reading {reference})",
        reference=reference,
        fix=fix,
    )


# The AWS configuration names credentials that cannot be had: nothing was asked of AWS.
_CREDENTIALS_CONFIG_ERRORS = (
    botocore.exceptions.ProfileNotFound,
    botocore.exceptions.ConfigNotFound,
    botocore.exceptions.ConfigParseError,
    botocore.exceptions.InvalidConfigError,
    botocore.exceptions.CredentialRetrievalError,
    botocore.exceptions.SSOError,
    botocore.exceptions.TokenRetrievalError,
    botocore.exceptions.RefreshWithMFAUnsupportedError,
)


def _credentials_config_error(exc: BaseException, reference: str) -> CredentialsConfigError:
    if isinstance(exc, botocore.exceptions.ProfileNotFound):
        profile = str(exc.kwargs.get("profile", ""))
        variable = next((v for v in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE") if os.environ.get(v) == profile), None)
        where = f" ({variable})" if variable else ""
        unset = f"unset {variable}" if variable else "aws configure list"
        return CredentialsConfigError(
            f"the AWS profile {profile}{where} does not exist in the AWS config files: no credentials for {reference}",
            reference=reference,
            fix=f"{unset}   # the default credentials then; or export AWS_PROFILE=NAME, a profile that exists "
            "(aws configure list-profiles lists them)",
        )
    if isinstance(exc, botocore.exceptions.SSOError | botocore.exceptions.TokenRetrievalError):
        return CredentialsConfigError(
            f"the profile's SSO session gives no credentials ({type(exc).__name__}) for {reference}",
            reference=reference,
            fix="aws sso login   # with the profile in use (AWS_PROFILE)",
        )
    return CredentialsConfigError(
        f"the AWS configuration gives no usable credentials for {reference}: {exc}",
        reference=reference,
        fix="aws configure list   # where the credentials come from, and what is wrong with them",
    )


def _name_of(reference: str) -> str:
    """The secret id inside a reference's text (for a printed command)."""
    try:
        ref = parse_reference(reference)
    except MalformedReference:
        return reference
    return ref.secret_id if isinstance(ref, AwsRef) else reference


def _from_code(code: str, message: str, reference: str, endpoint: str) -> ResolutionError:
    if code in _BAD_KEY_CODES:
        return InvalidAccessKey(
            f"AWS does not recognise the access key id of these credentials (reading {reference})",
            reference=reference,
            fix="aws configure list   # the access key in use and where it comes from: replace it, or unset "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to use a profile (export AWS_PROFILE=NAME)",
        )
    if code in _BAD_SIGNATURE_CODES:
        return SignatureMismatch(
            "the secret access key does not belong to the access key id: AWS computed another signature "
            f"(reading {reference})",
            reference=reference,
            fix="aws configure list   # the access key in use: set the secret access key that belongs to it "
            "(AWS_SECRET_ACCESS_KEY, or the profile's aws_secret_access_key)",
        )
    if code in _EXPIRED_CODES:
        return ExpiredCredentials(
            f"the session token of these credentials has expired (reading {reference})",
            reference=reference,
            fix="aws sso login   # for an SSO profile; for an assumed role, assume it again and export the new "
            "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN",
        )
    if code == "ResourceNotFoundException":
        return SecretNotFound(
            f"secret {reference} not found at {endpoint}",
            reference=reference,
            fix="ecomind doctor   # looks for it in the other regions and among similar names",
        )
    if code in _DENIED_CODES:
        return SecretAccessDenied(
            f"access to {reference} denied",
            reference=reference,
            fix="ecomind doctor   # prints the least-privilege statement for this secret",
        )
    if code == "DecryptionFailure":
        return SecretAccessDenied(
            f"{reference} could not be decrypted with its KMS key",
            reference=reference,
            fix="grant kms:Decrypt on the secret's customer key to the role",
        )
    if code in _THROTTLED_CODES:
        return SecretsThrottled(
            f"Secrets Manager throttled reads of {reference}",
            reference=reference,
            fix="export SECRETS_CACHE_TTL=900   # fewer refreshes; stagger task starts; the cache keeps serving",
        )
    if _scheduled_for_deletion(code, message):
        return SecretDeleted(
            f"{reference} is scheduled for deletion",
            reference=reference,
            fix=f"ecomind secrets restore {_name_of(reference)}",
        )
    return ResolutionError(
        f"reading {reference} failed: {code or 'unknown error'}",
        reference=reference,
        fix="ecomind doctor",
    )
