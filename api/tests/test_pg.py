"""app/pg.py: the one reading of a failed database connection, scrubbed of every piece of a password."""

from __future__ import annotations

import psycopg
import pytest

from app.db import connect_args
from app.pg import classify
from app.secrets import redact

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
