"""What each environment accepts (docs/secrets.md, "Policy per environment").

| rule                     | development | staging               | production                         |
|--------------------------|-------------|-----------------------|------------------------------------|
| ``.env`` loaded          | yes         | no, reported          | no, reported                       |
| known example values     | warning     | error                 | error                              |
| ``JWT_SECRET`` length    | any         | >= 32 bytes           | >= 32 bytes                        |
| database ``sslmode``     | as given    | ``require`` if absent | require/verify-ca/verify-full only |

SSL is set by editing the URL's query (other parameters kept), never by appending
``?sslmode=require`` to a string: the seed's version produced ``...?a=b?sslmode=require``.
"""

from __future__ import annotations

from typing import Literal

from .dburl import Finding, query_params, set_query, url_password

__all__ = [
    "ENVIRONMENTS",
    "EXAMPLE_VALUES",
    "JWT_MIN_BYTES",
    "Environment",
    "check_example_value",
    "check_jwt_secret",
    "database_ssl",
    "is_example_value",
]

Environment = Literal["development", "staging", "production"]
ENVIRONMENTS: tuple[Environment, ...] = ("development", "staging", "production")
JWT_MIN_BYTES = 32

# Values that appear in the seed document, in .env.example and in common tutorials.
# Compared case-insensitively, whole value or as a component (a URL's password).
EXAMPLE_VALUES = frozenset(
    v.lower()
    for v in (
        "local_dev_secret_change_in_production",
        "ecomind_dev_pass",
        "REPLACE_WITH_GENERATED_PASSWORD",
        "<generated-by-secrets-manager>",
        "REPLACE_WITH_GENERATED_SECRET",
        "changeme",
        "change-me",
        "change_me",
        "password",
        "secret",
        "postgres",
        "your-secret-key",
        "supersecret",
    )
)
# Markers that give an example away even inside a longer value.
_EXAMPLE_MARKERS = ("replace_with_", "change_in_production", "<generated", "changeme")

_SSL_OK_PRODUCTION = ("require", "verify-ca", "verify-full")
_SSL_WEAK = ("disable", "allow", "prefer")


def is_example_value(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in EXAMPLE_VALUES:
        return True
    return any(marker in lowered for marker in _EXAMPLE_MARKERS)


def check_example_value(environment: Environment, value: str, *, is_url: bool = False) -> Finding | None:
    """A finding when ``value`` (or, for a URL, its password) is a known example value."""
    candidates = [value]
    if is_url:
        password = url_password(value)
        if password is not None:
            candidates.append(password)
    if not any(is_example_value(c) for c in candidates):
        return None
    if environment == "development":
        return Finding(
            "holds a known example value",
            "run `ecomind init --force` to generate fresh local secrets",
            "warning",
        )
    return Finding(
        f"holds a known example value, refused in {environment}",
        "point the variable at a generated secret (`ecomind secrets provision`) and unset the example value",
    )


def check_jwt_secret(environment: Environment, value: str) -> Finding | None:
    if environment == "development":
        return None
    size = len(value.encode())
    if size >= JWT_MIN_BYTES:
        return None
    return Finding(
        f"is {size} bytes; {environment} needs at least {JWT_MIN_BYTES}",
        "generate one with `python -c 'import secrets; print(secrets.token_urlsafe(48))'` "
        "or let Secrets Manager generate it (`ecomind secrets provision`)",
    )


def database_ssl(environment: Environment, url: str) -> tuple[str, Finding | None]:
    """The URL with the SSL mode the environment needs, or a finding when it refuses it."""
    if environment == "development":
        return url, None
    mode = query_params(url).get("sslmode")
    if mode is None:
        return set_query(url, sslmode="require"), None
    if environment == "production" and mode not in _SSL_OK_PRODUCTION:
        return url, Finding(
            f"sslmode={mode} is refused in production",
            "use sslmode=require, verify-ca or verify-full (or remove sslmode: require is added)",
        )
    if mode not in _SSL_OK_PRODUCTION and mode not in _SSL_WEAK:
        return url, Finding(
            f"sslmode={mode} is not a libpq SSL mode",
            "use disable, allow, prefer, require, verify-ca or verify-full",
        )
    return url, None
