"""app/data/failures.py: the one reading of a failed database connection, scrubbed of every piece of a password."""

from __future__ import annotations

import random
import re
import string

import psycopg
import pytest

from app.data.engine import connect_args
from app.data.failures import classify
from app.secrets import redact
from app.secrets.urls import parse_database_secret

from .conftest import CANARY
from .support.services import free_port

HEAD, TAIL = CANARY[:20], CANARY[20:]


@pytest.mark.parametrize("reader", ["sqlalchemy", "libpq"])
def test_a_failure_that_quotes_a_piece_of_a_raw_password_is_scrubbed(reader: str) -> None:
    # SQLAlchemy and libpq end the password at its first '@': the rest is read as the host,
    # which the driver's error quotes ("failed to resolve host '<TAIL>@127.0.0.1'").
    raw = f"postgresql://ecomind:{HEAD}@{TAIL}@127.0.0.1:{free_port()}/ecomind"
    redact.register_input(raw)
    with pytest.raises(psycopg.OperationalError) as info:
        if reader == "sqlalchemy":  # as the engine, the doctor and `ecomind dev` connect
            psycopg.connect(**connect_args(raw), connect_timeout=2).close()
        else:  # as the rotation handlers connect
            psycopg.connect(raw, connect_timeout=2).close()
    assert TAIL in str(info.value), "the driver no longer quotes the host: the test proves nothing"
    failure = classify(info.value)
    assert failure.kind == "dns"
    for fragment in (CANARY, HEAD, TAIL):
        assert fragment not in failure.summary
    assert "127.0.0.1" in failure.summary  # what follows the password is kept: the message still helps


# -- any password, any placement of the characters parsers disagree on --------------------------

_ALNUM = string.ascii_letters + string.digits
_DELIMITERS = "@/?#: "


def _generated_passwords(count: int) -> list[str]:
    """Passwords of random pieces (each starts with a letter, so none reads as a port or an
    address) joined, led or ended by random '@ / ? # :' and blanks. Seeded: a failure replays."""
    rng = random.Random(7781)
    passwords = []
    for _ in range(count):
        pieces = [rng.choice(string.ascii_letters) + "".join(rng.choices(_ALNUM, k=rng.randint(0, 11)))]
        for _ in range(rng.randint(0, 4)):
            pieces += [rng.choice(_DELIMITERS) * rng.choice((1, 1, 1, 2)), rng.choice(string.ascii_letters)]
            pieces[-1] += "".join(rng.choices(_ALNUM, k=rng.randint(0, 11)))
        lead, end = rng.choice(("", "", "", *_DELIMITERS)), rng.choice(("", "", "", *_DELIMITERS))
        passwords.append(lead + "".join(pieces) + end)
    return passwords


def test_no_piece_of_any_password_reaches_a_drivers_message_unless_the_checks_refuse_its_url() -> None:
    # What every process does with DATABASE_URL: the raw input registered with the redactor, the
    # URL checked, then a connection (as the engine and the doctor connect, and as the rotation
    # handlers do) to a loopback port where nothing listens; whatever the driver then says is read
    # through classify, which scrubs it. A piece of 4 characters or more is scrubbed wherever it
    # stands; a shorter one only with what a parser reads around it (app/secrets/redact.py).
    port = free_port()
    refused = quoted = 0
    for password in _generated_passwords(250):
        url = f"postgresql://ecomind:{password}@127.0.0.1:{port}/ecomind"
        redact.register_input(url)
        findings = parse_database_secret(url).findings
        refused += bool(findings)
        pieces = [p for p in re.split(r"[@/?#: ]+", password) if len(p) >= 4]
        for reader in ("sqlalchemy", "libpq"):
            try:
                args = connect_args(url) if reader == "sqlalchemy" else {"conninfo": url}
                psycopg.connect(**args, connect_timeout=2).close()
            except psycopg.Error as exc:
                said, summary = str(exc), classify(exc).summary
            except ValueError as exc:  # SQLAlchemy's URL parser, before any driver
                said, summary = str(exc), ""
            else:
                raise AssertionError(f"{reader} connected to a closed port")
            quoted += any(piece in said for piece in pieces)
            scrubbed = redact.scrub(said)
            leaked = [piece for piece in pieces if piece in scrubbed or piece in summary]
            assert not leaked, (reader, findings, leaked, scrubbed)
            if not findings:  # a URL the checks let through: the driver read the password whole
                assert password not in said, (reader, said)
    # Not vacuous: most URLs are refused, some pass, and drivers did quote pieces to scrub.
    assert 0 < refused < 250 and quoted > 0, (refused, quoted)
