"""Keep resolved secret values out of logs.

Every value the store resolves is registered here (with the parts of it that are
secrets on their own: a URL's password, a JSON secret's password field). The
filter rewrites a log record's message, arguments and exception text with each
registered value replaced by ``[REDACTED]``.

A URL whose password holds a raw ``@``, ``/``, ``?``... is read differently by
urlsplit, SQLAlchemy and libpq (:func:`app.secrets.urls.written_userinfo`), and a
driver's message then quotes a piece of the password as a host, a port or a database
(``failed to resolve host 'pw06@127.0.0.1'``): each piece between two of ``@ / ? # : [ ]``
or a blank, up to the URL's last ``@``, is registered too (a piece too short to scrub
alone, with what a parser reads around it). ``app.data.failures.classify``,
where every database connection failure is translated, scrubs its summary with them.

:func:`install` applies the scrubbing at record creation (``setLogRecordFactory``),
so it holds for handlers added later by uvicorn, pytest or a library, and turns
botocore's wire loggers, which print ``SecretString`` at DEBUG, down to WARNING.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import traceback
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from app.secrets.urls import written_userinfo

__all__ = ["REDACTED", "RedactingFilter", "install", "register", "register_input", "scrub"]

REDACTED = "[REDACTED]"
_MIN_LENGTH = 4  # shorter strings would blank out ordinary words, ports and ids
_SECRET_KEYS = ("password", "secret", "token", "connection_string", "key")
_WIRE_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")

_lock = threading.Lock()
_values: tuple[str, ...] = ()  # longest first, so a URL goes before its password


def register(value: str) -> None:
    """Remember ``value`` and the secret parts inside it."""
    global _values
    found = set(_parts(value))
    if not found - set(_values):
        return
    with _lock:
        merged = set(_values) | found
        _values = tuple(sorted(merged, key=len, reverse=True))


def register_input(value: str) -> None:
    """Remember a raw input of a secret variable, however malformed.

    Besides what :func:`register` finds, the password is cut out of a URL as written
    (``urlsplit`` stops at the first ``/``, so ``u:ab/cd@host`` hides ``ab/cd``, and
    fails on a ``[``), and out of a libpq ``key=value`` string; a driver's error
    message may quote any of it.
    """
    register(value)
    extra: list[str] = []
    if "://" in value:
        userinfo = written_userinfo(value)
        if ":" in userinfo:
            extra += [userinfo, userinfo.partition(":")[2]]
    for match in _CONNINFO_PASSWORD.finditer(value):
        extra.append(match.group(1).strip("'"))
    for item in extra:
        if len(item) >= _MIN_LENGTH:
            register(item)
            register(unquote(item))


_CONNINFO_PASSWORD = re.compile(r"password\s*=\s*('[^']*'|\S+)")


def _parts(value: str) -> Iterable[str]:
    value = value.strip()
    if len(value) >= _MIN_LENGTH:
        yield value
    yield from _url_password(value)
    if value.startswith("{"):
        try:
            data = json.loads(value)
        except ValueError:
            return
        if isinstance(data, dict):
            for key, item in data.items():
                if isinstance(item, str) and any(word in key.lower() for word in _SECRET_KEYS):
                    yield from _parts(item)


# A character that makes parsers end a URL's password at different places (app/secrets/urls.py);
# where a piece of it may end once a parser reads it as a host, a port, a path or a query (a ':'
# too: after a misplaced '@' the host ends there); and what a parser reads on after a piece.
_MISREAD = re.compile(r"[@/?#\[\]\s]")
_CUTS = re.compile(r"[^@/?#\[\]\s:]+")
_READ_ON = (":/?#", "/?#", "?#", "")


def _password_pieces(value: str) -> Iterable[str]:
    """What a driver may quote of a URL's password when parsers disagree on where it ends."""
    userinfo = written_userinfo(value)
    user, colon, password = userinfo.partition(":")
    if not colon or not _MISREAD.search(password):
        return  # no password, or one that every parser reads whole
    base = value.index("://") + 3
    start = base + len(user) + 1
    for piece in _CUTS.finditer(password):
        first, end = start + piece.start(), start + piece.end()
        yield value[first:end]
        if end - first >= _MIN_LENGTH:
            continue  # scrubbed wherever it stands; the host after it stays readable
        # Too short to scrub alone: scrubbed with what a parser reads around it.
        yield value[start:end]  # the password up to here
        yield value[base:end]  # the user information up to here
        for stops in _READ_ON:
            stop = next((i for i in range(end, len(value)) if value[i] in stops), len(value))
            yield value[first:stop]


def _url_password(value: str) -> Iterable[str]:
    if "://" not in value:
        return
    for piece in _password_pieces(value):
        if len(piece) >= _MIN_LENGTH:
            yield piece
            yield unquote(piece)
    try:
        parts = urlsplit(value)
        password = parts.password
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return
    # libpq takes a password from the query too (?password=...).
    candidates = [password] + [v for k, v in query if any(w in k.lower() for w in _SECRET_KEYS)]
    for candidate in candidates:
        if candidate and len(candidate) >= _MIN_LENGTH:
            yield candidate
            yield unquote(candidate)


def scrub(text: str) -> str:
    for value in _values:
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def _scrub_arg(arg: Any) -> Any:
    if isinstance(arg, str):
        return scrub(arg)
    if isinstance(arg, int | float | bool) or arg is None:
        return arg
    # Other objects keep their type (so %d or %r still format) unless their text
    # holds a secret, in which case the scrubbed text is logged instead.
    text = str(arg)
    if scrub(text) != text or scrub(repr(arg)) != repr(arg):
        return scrub(text)
    return arg


def scrub_record(record: logging.LogRecord) -> None:
    if not _values:
        return
    if isinstance(record.msg, str):
        record.msg = scrub(record.msg)
    else:
        record.msg = scrub(str(record.msg))
    if isinstance(record.args, dict):
        record.args = {k: _scrub_arg(v) for k, v in record.args.items()}
    elif record.args:
        record.args = tuple(_scrub_arg(a) for a in record.args)
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
    if record.exc_text:
        record.exc_text = scrub(record.exc_text)
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)


class RedactingFilter(logging.Filter):
    """For handlers configured by hand (``dictConfig``); :func:`install` covers the rest."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub_record(record)
        return True


_installed = False


def install() -> None:
    """Scrub every record at creation and quiet the loggers that dump wire bodies."""
    global _installed
    for name in _WIRE_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    with _lock:
        if _installed:
            return
        _installed = True
        previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        scrub_record(record)
        return record

    logging.setLogRecordFactory(factory)
