"""The detectors this repository adds to detect-secrets' own: the baseline names this file.

detect-secrets' BasicAuthDetector finds `scheme://user:password@` only when the password holds
none of RFC 3986's delimiters (`:/?#[]@!$&'()*+,;=`), so a database password with a `!`, `+`
or `;` went through the commit-time scan. DatabaseUrlDetector finds the password of a
database URL whatever it holds, up to the `@` before the host.

What it flags and is no secret (USER:PASSWORD in docs, ${...} in compose) is dropped by the
same rules as every other finding: scripts/secret_filters.py and detect-secrets' filters
(is_templated_secret).
"""

# No `from __future__ import annotations`: detect-secrets loads this file as a module it does not
# register in sys.modules (as it does scripts/secret_filters.py).
import re

from detect_secrets.plugins.base import RegexBasedDetector

__all__ = ["DatabaseUrlDetector"]


class DatabaseUrlDetector(RegexBasedDetector):
    """The password of a PostgreSQL, Redis or MySQL URL, with a driver or not (postgresql+psycopg)."""

    secret_type = "Database URL Password"  # pragma: allowlist secret

    denylist = (
        re.compile(
            r"\b(?:postgres(?:ql)?|rediss?|mysql|mariadb)(?:\+[A-Za-z0-9_]+)?://"
            r"[^\s:/?#@]*"  # the user, maybe none (redis://:PASSWORD@host)
            r":([^\s@]+)@"  # the password: any character but a blank or the @ before the host
            r"(?=[A-Za-z0-9\[{$<])",  # a host (or a placeholder of one) follows
            re.IGNORECASE,
        ),
    )
