"""The policy of an environment, applied: one function per variable's value.

The rules themselves (which SSL modes, which example values, the JWT minimum) are
facts of :mod:`app.secrets.environment`; this module applies them. Each check takes
the model and a value and returns the value as the app will use it with the
findings about it. ``load_settings`` calls them once per value, and ``ecomind
doctor`` gets its verdicts from ``load_settings``' inspection: there is no second
copy of these checks.

| rule                     | development | staging               | production                         |
|--------------------------|-------------|-----------------------|------------------------------------|
| known example values     | warning     | error                 | error                              |
| ``JWT_SECRET`` length    | any         | >= 32 bytes           | >= 32 bytes                        |
| database ``sslmode``     | as given    | ``require`` if absent | require/verify-ca/verify-full only |

SSL is set by editing the URL's query (other parameters kept), never by appending
``?sslmode=require`` to a string: the original note's version produced
``...?a=b?sslmode=require``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from app.secrets.environment import EXAMPLE_MARKERS, EXAMPLE_VALUES, SSL_MODES, EnvironmentModel
from app.secrets.errors import Finding
from app.secrets.urls import OVERRIDES, parse_database_secret, query_params, set_query, url_password

__all__ = ["CHECKS", "check_example_value", "check_jwt_secret", "database_ssl"]


@dataclass(frozen=True)
class Checked:
    """A value as the app uses it (a database secret becomes a URL), and what is wrong with it."""

    value: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)


def _is_example(value: str) -> bool:
    lowered = value.strip().lower()
    return lowered in EXAMPLE_VALUES or any(marker in lowered for marker in EXAMPLE_MARKERS)


def check_example_value(m: EnvironmentModel, value: str, *, is_url: bool = False) -> Finding | None:
    """A finding when ``value`` (or, for a URL, its password) is a known example value."""
    candidates = [value]
    if is_url:
        password = url_password(value)
        if password is not None:
            candidates.append(password)
    if not any(_is_example(c) for c in candidates):
        return None
    if m.example_severity == "warning":
        return Finding("holds a known example value", "ecomind init --force", "warning", is_example=True)
    return Finding(
        f"holds a known example value, refused in {m.name}",
        "set the variable to a generated value, or point it at a secret: "
        f"ecomind secrets provision --environment {m.name}",
        is_example=True,
    )


def _one_of(items: tuple[str, ...]) -> str:
    return ", ".join(items[:-1]) + " or " + items[-1] if len(items) > 1 else items[0]


def database_ssl(m: EnvironmentModel, url: str) -> tuple[str, Finding | None]:
    """The URL with the SSL mode the environment needs, or a finding when it refuses it."""
    if m.ssl_default is None:
        return url, None
    overriding = sorted(set(query_params(url)) & set(OVERRIDES))
    if overriding:
        return url, Finding(
            f"query parameters {', '.join(overriding)} override the URL's own host, port or user, refused in {m.name}",
            "put the host, port, user and password in the URL itself: postgresql://USER:PASSWORD@HOST:PORT/DB",
        )
    mode = query_params(url).get("sslmode")
    if mode is None:
        return set_query(url, sslmode=m.ssl_default), None
    if mode in m.ssl_accepted:
        return url, None
    if mode in SSL_MODES["weak"]:
        return url, Finding(
            f"sslmode={mode} is refused in {m.name}",
            f"use sslmode={_one_of(m.ssl_accepted)} (or remove sslmode: {m.ssl_default} is added)",
        )
    return url, Finding(
        f"sslmode={mode} is not a libpq SSL mode",
        f"use {_one_of(m.ssl_accepted)}",
    )


def check_database_url(m: EnvironmentModel, raw: str) -> Checked:
    """Shape (URL, connection_string or RDS fields), example password, then SSL."""
    secret = parse_database_secret(raw)
    findings = list(secret.findings)
    if any(f.severity == "error" for f in findings):
        return Checked(secret.url, findings)
    example = check_example_value(m, secret.url, is_url=True)
    if example:
        findings.append(example)
    url, ssl = database_ssl(m, secret.url)
    if ssl:
        findings.append(ssl)
    return Checked(url, findings)


def check_jwt_secret(m: EnvironmentModel, value: str) -> Checked:
    findings = [f for f in (check_example_value(m, value),) if f]
    minimum = m.jwt_min_bytes
    size = len(value.encode())
    if minimum is not None and size < minimum:
        findings.append(
            Finding(
                f"is {size} bytes; {m.name} needs at least {minimum}",
                "let Secrets Manager generate it: ecomind secrets provision --environment "
                f"{m.name} (or: python3 -c 'import secrets; print(secrets.token_urlsafe(48))')",
            )
        )
    return Checked(value, findings)


def check_redis_url(m: EnvironmentModel, value: str) -> Checked:
    try:
        scheme = urlsplit(value).scheme
    except ValueError:
        scheme = ""
    if scheme not in ("redis", "rediss", "unix"):
        return Checked(value, [Finding("is not a Redis URL", "use redis://HOST:6379/0 or rediss:// for TLS")])
    findings = []
    if scheme != "unix":
        try:
            parts = urlsplit(value)
            port, host = parts.port, parts.hostname
        except ValueError:
            port, host = -1, "?"
        if not host:
            findings.append(Finding("names no host", "use redis://HOST:6379/0"))
        if port is not None and not 1 <= port <= 65535:
            findings.append(Finding("has no valid port", "use redis://HOST:6379/0"))
    example = check_example_value(m, value, is_url=True)
    return Checked(value, findings + ([example] if example else []))


CHECKS: dict[str, Callable[[EnvironmentModel, str], Checked]] = {
    "DATABASE_URL": check_database_url,
    "JWT_SECRET": check_jwt_secret,
    "REDIS_URL": check_redis_url,
}
