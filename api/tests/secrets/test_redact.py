import json
import logging

import pytest

from app.secrets import redact

from ..conftest import CANARY


@pytest.fixture(autouse=True)
def _installed() -> None:
    redact.install()


def test_message_args_and_exception_text_are_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    redact.register(CANARY)
    log = logging.getLogger("app.test")
    with caplog.at_level(logging.INFO):
        log.info("value is " + CANARY)
        log.info("value is %s and %r", CANARY, {"jwt": CANARY})
        try:
            raise ValueError(f"bad {CANARY}")
        except ValueError:
            log.exception("failed")
    assert CANARY not in caplog.text
    assert caplog.text.count(redact.REDACTED) >= 4


def test_url_password_and_json_secret_fields_are_registered(caplog: pytest.LogCaptureFixture) -> None:
    password = "Pw-" + CANARY[:12] + "-url"
    redact.register(f"postgresql://u:{password}@h/db")
    field = "Field-" + CANARY[-10:]
    redact.register(json.dumps({"username": "ecomind_app", "password": field}))
    with caplog.at_level(logging.INFO):
        logging.getLogger("app.test").info("auth failed for %s / %s as ecomind_app", password, field)
    assert password not in caplog.text and field not in caplog.text
    assert "ecomind_app" in caplog.text  # non-secret fields stay readable


def test_filter_for_hand_configured_handlers() -> None:
    redact.register(CANARY)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "v=%s", (CANARY,), None)
    assert redact.RedactingFilter().filter(record)
    assert CANARY not in record.getMessage()


def test_botocore_wire_loggers_are_quiet() -> None:
    assert logging.getLogger("botocore").getEffectiveLevel() >= logging.WARNING
    assert not logging.getLogger("botocore.parsers").isEnabledFor(logging.DEBUG)


def test_cli_consoles_scrub_what_they_print(capsys: pytest.CaptureFixture[str]) -> None:
    from app.cli.output import err, out

    redact.register(CANARY)
    out.print(f"value {CANARY}", markup=False)
    err.print(f"value {CANARY}", markup=False)
    captured = capsys.readouterr()
    assert CANARY not in captured.out + captured.err
    assert redact.REDACTED in captured.out and redact.REDACTED in captured.err


def test_objects_holding_secrets_do_not_show_them_in_repr() -> None:
    from pydantic import SecretStr

    from app.secrets.base import SecretVersion
    from app.secrets.store import ResolvedSecret
    from app.security import SigningKey

    for holder in (
        SecretVersion(CANARY, "v1"),
        ResolvedSecret(SecretStr(CANARY), "v1", "aws-secretsmanager:x"),
        SigningKey("kid", CANARY.encode()),
    ):
        assert CANARY not in repr(holder) and CANARY not in str(holder)
