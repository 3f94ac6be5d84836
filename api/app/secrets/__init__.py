"""The secret layer: references, backends, cache, policy, redaction and errors.

Nothing here imports FastAPI or SQLAlchemy; :mod:`app.settings` builds on it.
"""

from .errors import (
    MalformedReference,
    Problem,
    ResolutionError,
    SecretAccessDenied,
    SecretFileError,
    SecretFormatError,
    SecretNotFound,
    SecretsError,
    SecretsManagerUnreachable,
    SecretsThrottled,
    SettingsError,
)
from .refs import AwsRef, FileRef, Reference, default_reference, is_reference, parse_reference
from .store import ResolvedSecret, SecretStore

__all__ = [
    "AwsRef",
    "FileRef",
    "MalformedReference",
    "Problem",
    "Reference",
    "ResolutionError",
    "ResolvedSecret",
    "SecretAccessDenied",
    "SecretFileError",
    "SecretFormatError",
    "SecretNotFound",
    "SecretStore",
    "SecretsError",
    "SecretsManagerUnreachable",
    "SecretsThrottled",
    "SettingsError",
    "default_reference",
    "is_reference",
    "parse_reference",
]
