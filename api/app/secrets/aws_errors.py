"""What Secrets Manager's errors mean: the one place where botocore's error codes are read.

Every other module, the backend of app/secrets/aws.py included, asks :func:`translate_error`
(or the helpers here built on the same code sets) what an error is, and compares the typed
error it returns. One job, apart from the backend's reads: a code's meaning changes here
and nowhere else.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

import botocore.exceptions

from app.secrets import emulator
from app.secrets.endpoints import on_this_machine, secretsmanager_endpoint
from app.secrets.errors import (
    CredentialsConfigError,
    EmulatorFailed,
    ExpiredCredentials,
    InvalidAccessKey,
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
)
from app.secrets.refs import AwsRef, parse_reference
from app.secrets.regions import REGION_PLACEHOLDER

__all__ = ["batch_error", "batch_refused", "call_result", "error_code", "translate_error"]

# Denied by a policy. A bare HTTP 403 without a code says no more than that.
_DENIED_CODES = {"AccessDeniedException", "AccessDenied", "403"}
# Refused before any policy is read: the credentials themselves (Secrets Manager's codes, then STS's).
_BAD_KEY_CODES = {"UnrecognizedClientException", "InvalidClientTokenId"}
_BAD_SIGNATURE_CODES = {"InvalidSignatureException", "SignatureDoesNotMatch"}
_EXPIRED_CODES = {"ExpiredTokenException", "ExpiredToken"}
_THROTTLED_CODES = {"ThrottlingException", "Throttling", "TooManyRequestsException"}


def call_result(parsed: Mapping[str, Any]) -> str:
    """The ``result`` label of a call that Secrets Manager answered with an error (botocore's
    parsed answer): the same kind as the error the read raises (:func:`_from_code`), so the
    calls and the refresh failures agree on a cause."""
    error = parsed.get("Error", {})
    code, message = str(error.get("Code", "")), str(error.get("Message", ""))
    if code in _THROTTLED_CODES:
        return "throttled"
    if code in _DENIED_CODES or code in _BAD_KEY_CODES | _BAD_SIGNATURE_CODES | _EXPIRED_CODES:
        return "denied"
    if code == "ResourceNotFoundException" or _scheduled_for_deletion(code, message):
        return "not_found"
    return "error"


def _scheduled_for_deletion(code: str, message: str) -> bool:
    return code == "InvalidRequestException" and ("deletion" in message.lower() or "deleted" in message.lower())


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
        err: ResolutionError = _answered(exc, reference, endpoint)
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


def _answered(exc: botocore.exceptions.ClientError, reference: str, endpoint: str) -> ResolutionError:
    """An error Secrets Manager (or an emulator) answered: a server error, or what its code means."""
    message = str(exc.response.get("Error", {}).get("Message", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if status >= 500 and (on_this_machine(endpoint) or on_this_machine(secretsmanager_endpoint())):
        return EmulatorFailed(
            f"the emulator at {endpoint or secretsmanager_endpoint()} answered {status} "
            f"({_code(exc) or 'no code'}) while reading {reference}: the emulator failed, not a region",
            reference=reference,
            fix=emulator.FIX,
        )
    if status >= 500:
        return SecretsManagerUnreachable(
            f"Secrets Manager at {endpoint} answered {status} ({_code(exc) or 'no code'}) while reading {reference}",
            reference=reference,
            fix="ecomind doctor   # a server error: another region may answer (SECRETS_REPLICA_REGIONS)",
        )
    err = _from_code(_code(exc), message, reference, endpoint)
    operation = getattr(exc, "operation_name", "")
    if type(err) is SecretAccessDenied and operation not in ("", "GetSecretValue", "BatchGetSecretValue"):
        # Not a read of a value: the doctor's statement would not cover it. Name the action
        # and who may call it, never a grant: widening a task role is not the fix.
        return SecretAccessDenied(
            f"access to {reference} denied: secretsmanager:{operation}",
            reference=reference,
            fix=f"run this as a role that may call secretsmanager:{operation} on this secret: the operator "
            "who provisioned the secrets (docs/troubleshooting.md says who may run which command)",
        )
    return err


def batch_refused(exc: botocore.exceptions.ClientError) -> bool:
    """A BatchGetSecretValue refused whole for a reason single reads may not share: throttled
    past the retries, or a role allowed GetSecretValue but not BatchGetSecretValue."""
    code = _code(exc)
    return code in _THROTTLED_CODES or code in _DENIED_CODES


def batch_error(error: Mapping[str, Any], reference: str, endpoint: Callable[[], str]) -> ResolutionError | None:
    """One entry of a BatchGetSecretValue answer's ``Errors``: the error it is, or None when it
    was throttled (the secret is read again singly); ``endpoint`` is asked only for an error."""
    code = error.get("ErrorCode", "")
    if code in _THROTTLED_CODES:
        return None
    return _from_code(code, error.get("Message", ""), reference, endpoint())


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
