"""AWS Secrets Manager backend, and the one place where boto3 errors are translated.

Round trips are what cost: a cold start fetches every plain reference with
``BatchGetSecretValue`` (20 ids a call, one call per region), and only references
pinned to a stage or a version id go through ``GetSecretValue``, concurrently.

Throttling is retried by botocore's ``standard`` retry mode (jittered exponential
backoff, the behaviour AWS's SDKs share); a batch that is still throttled after
that, or that the role may not call, falls back to concurrent single reads.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import boto3
import botocore.exceptions
from botocore.config import Config

from .base import Fetched, SecretBackend, SecretVersion
from .errors import (
    MalformedReference,
    NoCredentials,
    NoRegion,
    ResolutionError,
    SecretAccessDenied,
    SecretDeleted,
    SecretNotFound,
    SecretsManagerUnreachable,
    SecretsThrottled,
)
from .refs import AwsRef, parse_reference

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
else:
    SecretsManagerClient = Any

__all__ = [
    "AwsSecretsManagerBackend",
    "client_config",
    "secretsmanager_client",
    "secretsmanager_endpoint",
    "translate_error",
]

log = logging.getLogger("app.secrets.aws")

BATCH_SIZE = 20  # BatchGetSecretValue accepts at most 20 ids in SecretIdList
_CURRENT = "AWSCURRENT"
_DENIED_CODES = {"AccessDeniedException", "AccessDenied", "403", "UnrecognizedClientException"}
_THROTTLED_CODES = {"ThrottlingException", "Throttling", "TooManyRequestsException"}


def secretsmanager_endpoint(env: Mapping[str, str] | None = None) -> str | None:
    """The endpoint override, as boto3 itself reads it: service-specific first, then global."""
    env = os.environ if env is None else env
    return env.get("AWS_ENDPOINT_URL_SECRETS_MANAGER") or env.get("AWS_ENDPOINT_URL") or None


def secretsmanager_client(region: str | None = None, endpoint_url: str | None = None) -> SecretsManagerClient:
    """A plain client with this layer's timeouts and retries (for the CLI and rotation handlers)."""
    return boto3.client(
        "secretsmanager",
        region_name=region or os.environ.get("AWS_REGION"),
        endpoint_url=endpoint_url or secretsmanager_endpoint(),
        config=client_config(),
    )


def client_config(max_attempts: int = 3) -> Config:
    # Short connect timeout: an unreachable endpoint at start must fail fast, not
    # after botocore's default 60 s per attempt.
    return Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=3,
        read_timeout=10,
        max_pool_connections=16,
    )


class AwsSecretsManagerBackend(SecretBackend[AwsRef]):
    """Keys are references without a JSON key: a whole secret at a stage or version."""

    def __init__(
        self,
        *,
        default_region: str | None,
        endpoint_url: str | None = None,
        session: boto3.session.Session | None = None,
        max_workers: int = 8,
    ) -> None:
        self._default_region = default_region
        self._endpoint_url = endpoint_url
        self._session = session
        self._clients: dict[str | None, SecretsManagerClient] = {}
        self._lock = threading.Lock()
        self._max_workers = max_workers
        self._pool: ThreadPoolExecutor | None = None

    # -- clients -------------------------------------------------------------------

    def client(self, region: str | None = None) -> SecretsManagerClient:
        region = region or self._default_region
        cached = self._clients.get(region)
        if cached is not None:
            return cached
        with self._lock:
            if region not in self._clients:
                session = self._session or boto3.session.Session()
                kwargs: dict[str, Any] = {"region_name": region, "config": client_config()}
                if self._endpoint_url:
                    kwargs["endpoint_url"] = self._endpoint_url
                self._clients[region] = session.client("secretsmanager", **kwargs)
            return self._clients[region]

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

    def fetch(self, keys: Sequence[AwsRef]) -> dict[AwsRef, Fetched]:
        results: dict[AwsRef, Fetched] = {}
        singles: list[AwsRef] = []
        by_region: dict[str | None, list[AwsRef]] = defaultdict(list)
        for key in dict.fromkeys(keys):
            if key.version_stage or key.version_id:
                singles.append(key)
            else:
                by_region[key.region or self._default_region].append(key)
        chunks = [
            (region, group[start : start + BATCH_SIZE])
            for region, group in by_region.items()
            for start in range(0, len(group), BATCH_SIZE)
        ]
        if len(chunks) > 1:
            # Several batches (regions, or more than 20 secrets): one round trip, not one each.
            answers = list(self._executor().map(lambda c: self._batch(*c), chunks))
        else:
            answers = [self._batch(*c) for c in chunks]
        for batch_results, retry in answers:
            results.update(batch_results)
            singles.extend(retry)
        results.update(self._get_many(singles))
        for key, got in results.items():
            if isinstance(got, SecretDeleted):
                results[key] = self._deletion_date(key, got)
        return results

    def _deletion_date(self, key: AwsRef, err: SecretDeleted) -> SecretDeleted:
        """The same error with the date the secret goes (one DescribeSecret, on this failure path only)."""
        try:
            deleted = self.client(key.region).describe_secret(SecretId=key.secret_id).get("DeletedDate")
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
            return err
        if deleted is None:
            return err
        when = deleted.strftime("%Y-%m-%d %H:%M %Z").strip()
        dated = SecretDeleted(f"{key} is scheduled for deletion on {when}", reference=err.reference, fix=err.fix)
        dated.__cause__ = err.__cause__
        return dated

    def _batch(self, region: str | None, chunk: list[AwsRef]) -> tuple[dict[AwsRef, Fetched], list[AwsRef]]:
        """One BatchGetSecretValue; returns what it answered and what to read singly."""
        if len(chunk) == 1:
            # A batch of one costs the same round trip and gives less precise errors.
            return {}, [chunk[0]]
        try:
            response = self.client(region).batch_get_secret_value(SecretIdList=[k.secret_id for k in chunk])
        except botocore.exceptions.ClientError as exc:
            code = _code(exc)
            if code in _THROTTLED_CODES or code in _DENIED_CODES:
                # Throttled past the retries, or a role allowed GetSecretValue but not
                # BatchGetSecretValue: single reads still start the process.
                log.warning("BatchGetSecretValue failed (%s); reading %d secrets one by one", code, len(chunk))
                return {}, list(chunk)
            err = translate_error(exc, ", ".join(str(k) for k in chunk), self.endpoint(region))
            return {k: err for k in chunk}, []
        except botocore.exceptions.BotoCoreError as exc:
            err = translate_error(exc, ", ".join(str(k) for k in chunk), self.endpoint(region))
            return {k: err for k in chunk}, []

        results: dict[AwsRef, Fetched] = {}
        retry: list[AwsRef] = []
        pending = {k.secret_id: k for k in chunk}
        for item in response.get("SecretValues", []):
            key = _match(pending, item.get("ARN", ""), item.get("Name", ""))
            if key is None:
                continue
            stages = tuple(item.get("VersionStages", ()))
            if _CURRENT not in stages:
                # Seen with emulators after a stage move: the batch answered an older
                # version. Ask for AWSCURRENT by name rather than trust it.
                retry.append(key)
                continue
            results[key] = SecretVersion(_secret_text(item), item.get("VersionId"), stages)
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

    def _get_many(self, keys: list[AwsRef]) -> dict[AwsRef, Fetched]:
        if not keys:
            return {}
        if len(keys) == 1:
            return {keys[0]: self.get(keys[0])}
        futures = {key: self._executor().submit(self.get, key) for key in keys}
        return {key: future.result() for key, future in futures.items()}

    def get(self, key: AwsRef) -> Fetched:
        """One GetSecretValue for ``key`` (stage defaults to AWSCURRENT, explicitly)."""
        kwargs: dict[str, Any] = {"SecretId": key.secret_id}
        if key.version_id:
            kwargs["VersionId"] = key.version_id
        else:
            kwargs["VersionStage"] = key.version_stage or _CURRENT
        try:
            item = self.client(key.region).get_secret_value(**kwargs)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            return translate_error(exc, str(key), self.endpoint(key.region))
        return SecretVersion(_secret_text(item), item.get("VersionId"), tuple(item.get("VersionStages", ())))


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
    return code


def translate_error(exc: BaseException, reference: str, endpoint: str) -> ResolutionError:
    """Map a boto3/botocore exception to the secret layer's error tree."""
    if isinstance(exc, botocore.exceptions.ClientError):
        message = str(exc.response.get("Error", {}).get("Message", ""))
        err = _from_code(_code(exc), message, reference, endpoint)
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
            fix="export AWS_REGION=us-east-1   # the region of the secrets (or use a full ARN)",
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


def _name_of(reference: str) -> str:
    """The secret id inside a reference's text (for a printed command)."""
    try:
        ref = parse_reference(reference)
    except MalformedReference:
        return reference
    return ref.secret_id if isinstance(ref, AwsRef) else reference


def _from_code(code: str, message: str, reference: str, endpoint: str) -> ResolutionError:
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
    if code == "InvalidRequestException" and ("deletion" in message.lower() or "deleted" in message.lower()):
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
