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


def test_cli_messages_are_scrubbed_and_data_is_verbatim(capsys: pytest.CaptureFixture[str]) -> None:
    from app.cli.output import Verbatim, data, print_json, say

    redact.register(CANARY)
    say(f"value {CANARY}")
    say(f"value {CANARY}", err=True)
    captured = capsys.readouterr()
    assert CANARY not in captured.out + captured.err
    assert redact.REDACTED in captured.out and redact.REDACTED in captured.err
    # Data prints as it is: no emoji code, no markup, no scrubbing of a short common value.
    redact.register("development")
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecomind/prod/jwt-AbCdEf"
    data(f"{arn} [bold]x[/bold] ENVIRONMENT=development")
    print_json({"arn": Verbatim(arn), "environment": Verbatim("development"), "message": f"a {CANARY}"})
    out = capsys.readouterr().out
    assert f"{arn} [bold]x[/bold] ENVIRONMENT=development" in out
    assert '"environment": "development"' in out and f'"arn": "{arn}"' in out
    assert CANARY not in out


@pytest.mark.parametrize(
    "raw",
    [
        f"postgresql+psycopg://ecomind:{CANARY}@127.0.0.1:5432/ecomind",
        f"postgresql://u:{CANARY}@127.0.0.1:notaport/db",
        f"mysql://u:{CANARY}@h/db",
        f"http://u:{CANARY}@cache:6379/0",
        f"postgresql://u:{CANARY}/with/slash@h/db",
        f"host=h user=u password={CANARY} dbname=d",
        CANARY,
    ],
)
def test_raw_inputs_are_scrubbed_whatever_their_shape(raw: str) -> None:
    redact.register_input(raw)
    password = CANARY + ("/with/slash" if "/with/slash" in raw else "")
    assert password not in redact.scrub(f"driver says: invalid dsn {raw!r}; password {password}")


def test_objects_holding_secrets_do_not_show_them_in_repr() -> None:
    from pydantic import SecretStr

    from app.auth.tokens import SigningKey
    from app.secrets.base import SecretVersion
    from app.secrets.store import ResolvedSecret

    for holder in (
        SecretVersion(CANARY, "v1"),
        ResolvedSecret(SecretStr(CANARY), "v1", "aws-secretsmanager:x"),
        SigningKey("kid", CANARY.encode()),
    ):
        assert CANARY not in repr(holder) and CANARY not in str(holder)


@pytest.mark.parametrize(
    ("raw", "quoted"),
    [
        # SQLAlchemy and libpq end the password at its first '@': the rest is taken for the host.
        ("postgresql://u:ab@cd@127.0.0.1:1/db", "failed to resolve host 'cd@127.0.0.1'"),
        # libpq ends the authority at a '/': the rest is taken for the database.
        ("postgresql://u:xy/zw@127.0.0.1:1/db", 'database "zw@127.0.0.1:1/db" does not exist'),
    ],
)
def test_short_pieces_of_a_raw_password_are_scrubbed_with_what_a_driver_reads_around_them(
    raw: str, quoted: str
) -> None:
    redact.register_input(raw)
    scrubbed = redact.scrub(quoted)
    assert redact.REDACTED in scrubbed
    assert "cd@" not in scrubbed and "zw@" not in scrubbed
    assert redact.scrub("connect to 127.0.0.1 port 5432") == "connect to 127.0.0.1 port 5432"


@pytest.mark.parametrize("between", ["/", "?", "#", ":99/"])
def test_each_piece_of_a_password_meant_up_to_the_last_at_sign_is_scrubbed(between: str) -> None:
    # Every parser reads 'op-7781-piece' as the host (and '99' as the port): the driver quotes it.
    head, tail = CANARY[:20], CANARY[20:]
    redact.register_input(f"postgresql://ecomind:{head}@op-7781-piece{between}{tail}@127.0.0.1:1/ecomind")
    scrubbed = redact.scrub('failed to resolve host "op-7781-piece": Name or service not known')
    assert "op-7781-piece" not in scrubbed and redact.REDACTED in scrubbed
    assert tail not in redact.scrub(f'database "{tail}@127.0.0.1:1/ecomind" does not exist')
