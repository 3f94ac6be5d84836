"""Database secrets: the shapes a database secret may take, and PostgreSQL URL checks.

A database secret is one of:

* a URL, ``postgresql://user:password@host:5432/db?...``;
* JSON with ``connection_string`` (the seed's staging shape);
* JSON with the fields AWS's RDS rotation writes: ``engine, host, port, dbname,
  username, password`` (``database`` is accepted for ``dbname``, as in the seed).

Rotation rewrites ``password`` and nothing else, so when the fields are present the
URL is built from them; a ``connection_string`` that disagrees with them is reported
and not used. Nothing here ever puts a value into a message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from app.secrets.environment import POSTGRES_PORT, SSL_MODES
from app.secrets.errors import Finding

__all__ = [
    "OVERRIDES",
    "field_problems",
    "parse_database_secret",
    "query_params",
    "rds_fields",
    "set_query",
    "url_from_fields",
    "url_password",
    "userinfo_finding",
    "written_userinfo",
]

_SCHEMES = {"postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2", "postgresql+asyncpg"}
_FIELDS = ("host", "username", "password")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")  # RFC 3986's, as urlsplit reads it


@dataclass(frozen=True)
class DatabaseSecret:
    url: str
    shape: str  # "url", "connection_string" or "fields"
    findings: list[Finding] = field(default_factory=list)


def parse_database_secret(text: str) -> DatabaseSecret:
    text = text.strip()
    if not text.startswith("{"):
        return DatabaseSecret(text, "url", check_url(text))
    try:
        data = json.loads(text)
    except ValueError:
        return DatabaseSecret(
            "",
            "json",
            [Finding("the value looks like JSON but does not parse", "store a URL or a valid JSON object")],
        )
    if not isinstance(data, dict):
        return DatabaseSecret("", "json", [Finding("the JSON value is not an object", "store a JSON object")])
    fields = rds_fields(data)
    if fields is not None:
        url = url_from_fields(fields)
        findings = check_url(url)
        given = data.get("connection_string")
        if isinstance(given, str) and given:
            differ = _differences(given, url)
            if differ:
                findings.append(
                    Finding(
                        f"connection_string disagrees with the secret's fields ({', '.join(differ)}); "
                        "the fields are used",
                        "rewrite connection_string from the fields (rotation updates only password), or remove it",
                        "warning",
                    )
                )
        return DatabaseSecret(url, "fields", findings)
    given = data.get("connection_string")
    if isinstance(given, str) and given:
        return DatabaseSecret(given, "connection_string", check_url(given))
    bad = field_problems(data)
    if bad:
        key = "host" if bad[0].startswith("host") else "port"
        return DatabaseSecret(
            "",
            "json",
            [Finding(f"in the fields: {'; '.join(bad)}", f"store a valid {key} in the secret's JSON", json_key=key)],
        )
    missing = [k for k in _FIELDS if not data.get(k)] + ([] if _dbname(data) else ["dbname"])
    return DatabaseSecret(
        "",
        "json",
        [
            Finding(
                f"the JSON secret has neither connection_string nor the fields {', '.join(missing)}",
                "store {engine, host, port, dbname, username, password} (the RDS rotation shape)",
            )
        ],
    )


def _dbname(data: Mapping[str, object]) -> object:
    # The original note's staging secret says "database"; RDS rotation writes "dbname".
    return data.get("dbname") or data.get("database")


# A host name or an IP address: nothing that could end the authority of a URL.
_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}$|^\[?[0-9A-Fa-f:.]+\]?$")


def field_problems(data: Mapping[str, object]) -> list[str]:
    """What is wrong with an RDS-shaped secret's connection fields (host, port)."""
    problems = []
    host = str(data.get("host") or "")
    if host and not _HOST.match(host):
        problems.append("host is not a host name or an IP address")
    port = data.get("port")
    if port not in (None, ""):
        try:
            ok = 1 <= int(str(port)) <= 65535
        except ValueError:
            ok = False
        if not ok:
            problems.append("port is not a TCP port (1 to 65535)")
    return problems


def rds_fields(data: Mapping[str, object]) -> dict[str, str] | None:
    """The connection fields of an RDS-shaped secret (``database`` read as ``dbname``), or None."""
    dbname = _dbname(data)
    if not (all(data.get(k) for k in _FIELDS) and dbname) or field_problems(data):
        return None
    return {
        "username": str(data["username"]),
        "password": str(data["password"]),
        "host": str(data["host"]),
        "port": str(data.get("port") or POSTGRES_PORT),
        "dbname": str(dbname),
    }


def url_from_fields(fields: Mapping[str, str]) -> str:
    """The one builder of a PostgreSQL URL from RDS fields (see :func:`rds_fields`)."""
    netloc = f"{quote(fields['username'], safe='')}:{quote(fields['password'], safe='')}@{fields['host']}"
    netloc += f":{fields.get('port') or POSTGRES_PORT}"
    return urlunsplit(("postgresql", netloc, "/" + quote(fields["dbname"], safe=""), "", ""))


def check_url(url: str) -> list[Finding]:
    """Problems with a PostgreSQL URL, described without any of its parts but the scheme."""
    if not url:
        return [Finding("the value is empty", "set a postgresql:// URL or a reference")]
    scheme, _, _ = url.partition("://")
    if "://" not in url or not _SCHEME.fullmatch(scheme):
        return [Finding("the value is not a URL", "use postgresql://USER:PASSWORD@HOST:PORT/DB")]
    scheme = scheme.lower()
    if scheme not in _SCHEMES:
        return [
            Finding(
                f"'{scheme}://' is not a PostgreSQL URL",
                "EcoMind needs PostgreSQL: use postgresql://USER:PASSWORD@HOST:PORT/DB",
            )
        ]
    # Before urlsplit: a raw '[' in the password makes it fail with a message about IPv6 hosts.
    userinfo = userinfo_finding(url)
    if userinfo is not None:
        return [userinfo]
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        return [Finding("the URL does not parse (bad port or brackets)", "use postgresql://USER:PASSWORD@HOST:PORT/DB")]
    findings = []
    if parts.fragment or "#" in url:
        findings.append(Finding("the URL has a fragment (#...), which libpq would read as part of it", "remove it"))
    if parts.port is not None and not 1 <= parts.port <= 65535:
        findings.append(Finding(f"port {parts.port} is not a TCP port", "use a port from 1 to 65535"))
    params = query_params(url)
    if not parts.hostname and "host" not in params:
        findings.append(Finding("the URL names no host", "use postgresql://USER:PASSWORD@HOST:PORT/DB"))
    if not parts.path.strip("/"):
        findings.append(Finding("the URL names no database", "end the URL with /DBNAME"))
    mode = params.get("sslmode")
    if mode is not None and mode not in SSL_MODES["strong"] + SSL_MODES["weak"]:
        findings.append(
            Finding(
                f"sslmode={mode} is not a libpq SSL mode",
                "use disable, allow, prefer, require, verify-ca or verify-full",
            )
        )
    return findings


# How SQLAlchemy's make_url reads a URL's user information (what the app connects with): a user
# without ':' or '/', then ':' and a password up to the first '@'. libpq too ends the password at
# the first '@', and the user information at a '/'. urlsplit (these checks, the doctor, `config
# show`) ends the authority at the first '/', '?' or '#' and the user information at its last '@'.
# Whoever wrote `u:pw@x/y@host/db` meant the password up to the last '@', which no parser reads:
# all of them connect to 'x' and quote it. So with two '@' the user information runs to the last.
_FIRST_AT = re.compile(r"([^:/]*(?::[^@]*)?)@")
_NETLOC = re.compile(r"[^/?#]*")
# Each of these, raw in a user name or password, makes those parsers read different parts
# (or libpq refuse the URL and quote it); percent-encoded, they all read the same password.
_ENCODED = {"@": "%40", "/": "%2F", "?": "%3F", "#": "%23", "[": "%5B", "]": "%5D", "%": "%25", " ": "%20"}
_NAMES = {"%": "'%' that starts no %XX", " ": "blank"}
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_ENCODE_ONE = "python3 -c \"import urllib.parse; print(urllib.parse.quote(input(), safe=''))\""


def written_userinfo(url: str) -> str:
    """``url``'s user information as written: the longest any of those parsers reads."""
    rest = url.partition("://")[2]
    readings = []
    first = _FIRST_AT.match(rest)
    if first:
        readings.append(first.group(1))
    netloc = _NETLOC.match(rest)
    if netloc and "@" in netloc.group(0):
        readings.append(netloc.group(0).rpartition("@")[0])
    if rest.count("@") > 1:
        readings.append(rest.rpartition("@")[0])
    return max(readings, key=len, default="")


def _raw_characters(text: str) -> list[str]:
    found = [c for c in "@/?#[]" if c in text]
    if _BAD_PERCENT.search(text):
        found.append("%")
    if any(c.isspace() for c in text):
        found.append(" ")
    return found


def userinfo_finding(url: str) -> Finding | None:
    """A finding when URL parsers and drivers would read ``url``'s user or password differently.

    ``postgresql://u:ab@cd@host/db``: urlsplit reads the password ``ab@cd``, SQLAlchemy and libpq
    the password ``ab`` and the host ``cd@host``, which a driver's error then quotes. Any URL with
    two raw ``@`` is refused, whatever ``/``, ``?`` or ``#`` stand between them: in
    ``u:ab@cd/ef@host/db`` every parser connects to ``cd``, a piece of the password meant. The
    finding names the characters, never the value.
    """
    if "://" not in url:
        return None
    user, _, password = written_userinfo(url).partition(":")
    parts = [(name, _raw_characters(text)) for name, text in (("user name", user), ("password", password))]
    parts = [(name, found) for name, found in parts if found]
    if not parts:
        return None
    part = " and ".join(name for name, _ in parts)
    found = list(dict.fromkeys(c for _, chars in parts for c in chars))
    named = [_NAMES.get(c, repr(c)) for c in found]
    listing = named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
    encoded = ", ".join(f"{'a blank' if c == ' ' else repr(c)} as {_ENCODED[c]}" for c in found)
    # An '@' of the query or the database name counts too: only the '@' before the host stays raw.
    only_one = "; a URL holds one raw '@', the one before the host" if url.count("@") > 1 else ""
    return Finding(
        f"the {part} in the URL holds a raw {listing}, which URL parsers and drivers read differently",
        f"percent-encode the {part} in the URL: {encoded} (a whole value: {_ENCODE_ONE}){only_one}",
    )


# Query parameters that libpq lets override the URL's own parts: where it connects,
# as whom, with which password. In staging and production the URL's authority must be
# the truth (the doctor, the SSL policy and the logs all read it).
OVERRIDES = ("host", "hostaddr", "port", "user", "password", "dbname", "service", "passfile")


def query_params(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def set_query(url: str, **params: str) -> str:
    """``url`` with ``params`` set in its query string; every other parameter is kept."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def url_password(url: str) -> str | None:
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password is not None else None


def _differences(a: str, b: str) -> list[str]:
    try:
        pa, pb = urlsplit(a), urlsplit(b)
        left = (pa.username, url_password(a), pa.hostname, pa.port or POSTGRES_PORT, pa.path.strip("/"))
        right = (pb.username, url_password(b), pb.hostname, pb.port or POSTGRES_PORT, pb.path.strip("/"))
    except ValueError:
        return ["unparseable"]
    names = ("username", "password", "host", "port", "dbname")
    return [
        n
        for n, x, y in zip(names, left, right, strict=True)
        if (unquote(str(x)) if x else x) != (unquote(str(y)) if y else y)
    ]
