"""The detectors this repository adds to detect-secrets' own: the baseline names this file.

detect-secrets' BasicAuthDetector finds `scheme://user:password@` only when the password holds
none of RFC 3986's delimiters (`:/?#[]@!$&'()*+,;=`), so a database password with a `!`, `+`
or `;` went through the commit-time scan. DatabaseUrlDetector finds the password of a
database URL whatever it holds, up to the `@` before the host, and the one in its query
(`?password=`, which libpq reads too). libpq takes a password from two more places, each with
its detector: a keyword DSN (`host=... user=... password=...`) and a password file's line
(`HOST:PORT:DB:USER:PASSWORD`, `.pgpass`, whose name the guard refuses outright).

What they flag and is no secret (USER:PASSWORD in docs, ${...} in compose, .env.example's
REPLACE_WITH_GENERATED_PASSWORD) is dropped by the same rules as every other finding:
scripts/secret_filters.py and detect-secrets' filters (is_templated_secret).
"""

# No `from __future__ import annotations`: detect-secrets loads this file as a module it does not
# register in sys.modules (as it does scripts/secret_filters.py).
import re
from collections.abc import Iterator

from detect_secrets.plugins.base import BasePlugin, RegexBasedDetector

__all__ = ["DatabaseUrlDetector", "KeywordDsnDetector", "PgpassLineDetector"]

_SCHEMES = r"\b(?:postgres(?:ql)?|rediss?|mysql|mariadb)(?:\+[A-Za-z0-9_]+)?://"


class DatabaseUrlDetector(RegexBasedDetector):
    """The password of a PostgreSQL, Redis or MySQL URL, with a driver or not (postgresql+psycopg)."""

    secret_type = "Database URL Password"  # pragma: allowlist secret

    denylist = (
        re.compile(
            _SCHEMES + r"[^\s:/?#@]*"  # the user, maybe none (redis://:PASSWORD@host)
            r":([^\s@]+)@"  # the password: any character but a blank or the @ before the host
            r"(?=[A-Za-z0-9\[{$<])",  # a host (or a placeholder of one) follows
            re.IGNORECASE,
        ),
        re.compile(
            _SCHEMES + r"[^\s?#]*\?(?:[^\s#]*&)?"  # up to the query, and any parameter before
            r"password=([^\s&#'\"`]+)",  # libpq's (and redis-py's) password parameter
            re.IGNORECASE,
        ),
    )


# One `keyword=value` of a libpq connection string: a value is 'quoted' (\' and \\ escaped in it)
# or runs to the next blank. A value that ends in `,` or `)` is a call's argument
# (`connect(host=h, password=p)`), which names a value and holds none: no match.
_PAIR = re.compile(r"(?:^|(?<=[\s'\"]))([a-z_]+)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s'\"`,()]+)(?=$|[\s'\"`])")
# A keyword DSN names where to connect as well as the password.
_DSN_KEYWORDS = frozenset({"host", "hostaddr", "port", "dbname", "user", "service"})


class KeywordDsnDetector(BasePlugin):
    """The password of a libpq keyword DSN: `host=db user=app password=... dbname=app`."""

    secret_type = "PostgreSQL Keyword DSN Password"  # pragma: allowlist secret

    def analyze_string(self, string: str) -> Iterator[str]:
        pairs = _PAIR.findall(string)
        if not _DSN_KEYWORDS & {key for key, _ in pairs}:
            return
        for key, value in pairs:
            if key == "password":
                yield re.sub(r"\\(.)", r"\1", value[1:-1]) if value.startswith("'") else value


class PgpassLineDetector(RegexBasedDetector):
    """The password of a libpq password file's line (.pgpass), `HOST:PORT:DB:USER:PASSWORD`, wherever it is."""

    secret_type = "PostgreSQL Password File Entry"  # pragma: allowlist secret

    denylist = (
        re.compile(
            r"(?:^|(?<=[\s'\"]))"
            r"(?=[^:\s]*[A-Za-z.*\[])[^:\s'\"]+"  # a host name, an address or *: not a time's hours
            r":(?:\d{1,5}|\*)"  # a port or *
            r":[^:\s'\"]+:[^:\s'\"]+"  # a database and a user (names or *)
            r":((?:[^:\\\s'\"]|\\.)+)"  # the password, where \: and \\ stand for : and \
            r"(?=$|[\s'\"])"
        ),
    )
