"""Every error the secret layer raises, in one tree.

::

    SecretsError                      base: never carries a secret value
    ├── MalformedReference            a reference string is malformed
    ├── ResolutionError               a well-formed reference could not be resolved
    │   ├── SecretNotFound            ResourceNotFoundException, missing stage/version
    │   ├── SecretAccessDenied        AccessDeniedException or a bare HTTP 403
    │   ├── SecretsManagerUnreachable endpoint down, DNS, TLS, timeouts
    │   ├── SecretsThrottled          ThrottlingException after the retries ran out
    │   ├── SecretFormatError         not JSON where a key is asked, missing JSON key
    │   └── SecretFileError           a ``file:`` path that cannot be read
    └── SettingsError                 one or more Problems found while loading settings

Messages name the variable (when known), the reference as written by the operator
(never the value behind it) and a fix. AWS and OS errors are translated in
:mod:`app.secrets.aws` and :mod:`app.secrets.files` with ``raise ... from exc``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "MalformedReference",
    "Problem",
    "ResolutionError",
    "SecretAccessDenied",
    "SecretFileError",
    "SecretFormatError",
    "SecretNotFound",
    "SecretsError",
    "SecretsManagerUnreachable",
    "SecretsThrottled",
    "SettingsError",
]

Severity = Literal["error", "warning"]


class SecretsError(Exception):
    """Base of the tree. ``str(exc)`` is safe to print and log."""

    def __init__(self, message: str, *, fix: str = "", variable: str | None = None) -> None:
        self.message = message
        self.fix = fix
        self.variable = variable
        super().__init__(self.render())

    def render(self) -> str:
        text = self.message
        if self.variable:
            text = f"{self.variable}: {text}"
        if self.fix:
            text = f"{text}\n  fix: {self.fix}"
        return text

    def for_variable(self, variable: str) -> SecretsError:
        """The same error, attributed to the variable whose reference failed."""
        self.variable = variable
        self.args = (self.render(),)
        return self


class MalformedReference(SecretsError):
    """A reference string does not follow the grammar of docs/secrets.md."""


class ResolutionError(SecretsError):
    """A reference is well formed but its value could not be obtained."""

    def __init__(
        self,
        message: str,
        *,
        reference: str,
        fix: str = "",
        variable: str | None = None,
    ) -> None:
        self.reference = reference
        super().__init__(message, fix=fix, variable=variable)


class SecretNotFound(ResolutionError):
    pass


class SecretAccessDenied(ResolutionError):
    pass


class SecretsManagerUnreachable(ResolutionError):
    pass


class SecretsThrottled(ResolutionError):
    pass


class SecretFormatError(ResolutionError):
    pass


class SecretFileError(ResolutionError):
    pass


@dataclass(frozen=True)
class Problem:
    """One finding about one variable. ``message`` and ``fix`` never hold a value."""

    variable: str
    source: str
    message: str
    fix: str
    severity: Severity = "error"

    def render(self) -> str:
        return f"{self.variable} (from {self.source}): {self.message}\n  fix: {self.fix}"


class SettingsError(SecretsError):
    """Loading the settings found errors; ``problems`` lists every one of them."""

    def __init__(self, problems: list[Problem], sources: dict[str, str] | None = None) -> None:
        self.problems = problems
        self.sources = sources or {}
        errors = [p for p in problems if p.severity == "error"]
        lines = [f"{len(errors)} configuration problem(s):"]
        lines += ["- " + p.render().replace("\n", "\n  ") for p in problems]
        super().__init__("\n".join(lines))
