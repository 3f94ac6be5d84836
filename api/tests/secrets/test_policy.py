import json

import pytest

from app.secrets.environment import model
from app.secrets.policy import check_example_value, check_jwt_secret, database_ssl
from app.secrets.urls import parse_database_secret, set_query

URL = "postgresql://u:p@h:5432/db"
DEV, STAGING, PROD = model("development"), model("staging"), model("production")


def test_ssl_is_added_as_a_query_parameter_keeping_the_others() -> None:
    url, finding = database_ssl(PROD, URL + "?connect_timeout=5")
    assert finding is None
    assert url == URL + "?connect_timeout=5&sslmode=require"


def test_ssl_added_to_a_url_without_query() -> None:
    assert database_ssl(STAGING, URL) == (URL + "?sslmode=require", None)


@pytest.mark.parametrize("mode", ["require", "verify-ca", "verify-full"])
def test_strong_modes_are_kept_in_production(mode: str) -> None:
    assert database_ssl(PROD, f"{URL}?sslmode={mode}") == (f"{URL}?sslmode={mode}", None)


@pytest.mark.parametrize("mode", ["disable", "allow", "prefer"])
def test_weak_modes_are_refused_in_production(mode: str) -> None:
    _, finding = database_ssl(PROD, f"{URL}?sslmode={mode}")
    assert finding is not None and finding.severity == "error"
    assert f"sslmode={mode}" in finding.message


def test_staging_keeps_an_explicit_mode_and_development_is_as_given() -> None:
    assert database_ssl(STAGING, URL + "?sslmode=prefer")[0].endswith("sslmode=prefer")
    assert database_ssl(DEV, URL) == (URL, None)


def test_set_query_replaces_and_keeps() -> None:
    assert set_query(URL + "?a=1&sslmode=disable&b=", sslmode="require") == URL + "?a=1&b=&sslmode=require"


@pytest.mark.parametrize(
    "value",
    [
        "local_dev_secret_change_in_production",
        "ecomind_dev_pass",
        "REPLACE_WITH_GENERATED_PASSWORD",
        "<generated-by-secrets-manager>",
        "changeme",
        "CHANGEME",
    ],
)
def test_seed_example_values_are_known(value: str) -> None:
    finding = check_example_value(PROD, value)
    assert finding is not None and finding.severity == "error"
    assert value not in finding.message + finding.fix
    dev = check_example_value(DEV, value)
    assert dev is not None and dev.severity == "warning"


def test_example_password_inside_a_url_is_found() -> None:
    assert check_example_value(STAGING, "postgresql://ecomind:ecomind_dev_pass@h/db", is_url=True)
    assert check_example_value(STAGING, "postgresql://ecomind:Zx9-generated@h/db", is_url=True) is None


def test_jwt_strength() -> None:
    assert check_jwt_secret(DEV, "short").findings == []
    [short] = check_jwt_secret(PROD, "x" * 31).findings
    assert "31 bytes" in short.message
    assert check_jwt_secret(STAGING, "x" * 32).ok


RDS = {
    "engine": "postgres",
    "host": "db.example",
    "port": 5432,
    "dbname": "ecomind",
    "username": "ecomind_app",
    "password": "p@ss:w/rd",
}


def test_rds_fields_build_the_url_with_quoted_password() -> None:
    secret = parse_database_secret(json.dumps(RDS))
    assert secret.shape == "fields" and not secret.findings
    assert secret.url == "postgresql://ecomind_app:p%40ss%3Aw%2Frd@db.example:5432/ecomind"


def test_seed_staging_shape_with_database_key_and_string_port() -> None:
    seed = {
        "connection_string": "postgresql://ecomind_app:pw@rds:5432/ecomind",
        "host": "rds",
        "port": "5432",
        "database": "ecomind",
        "username": "ecomind_app",
        "password": "pw",
    }
    secret = parse_database_secret(json.dumps(seed))
    assert secret.url == "postgresql://ecomind_app:pw@rds:5432/ecomind" and not secret.findings


def test_connection_string_disagreeing_with_fields_is_reported_not_trusted() -> None:
    stale = dict(RDS, password="new-rotated", connection_string="postgresql://ecomind_app:old@db.example:5432/ecomind")
    secret = parse_database_secret(json.dumps(stale))
    assert "new-rotated" in secret.url
    [finding] = secret.findings
    assert finding.severity == "warning" and "password" in finding.message
    assert "old" not in finding.message and "new-rotated" not in finding.message


def test_connection_string_only() -> None:
    secret = parse_database_secret(json.dumps({"connection_string": URL}))
    assert (secret.url, secret.shape) == (URL, "connection_string")


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("mysql://u:p@h/db", "not a PostgreSQL URL"),
        ("not a url", "not a URL"),
        ("postgresql://u:p@h:99999/db", "does not parse"),
        ("postgresql://u:p@h:5432", "no database"),
        ('{"username": "u"}', "neither connection_string nor the fields"),
        ("{broken", "does not parse"),
    ],
)
def test_bad_database_values(value: str, needle: str) -> None:
    findings = parse_database_secret(value).findings
    assert any(needle in f.message for f in findings), findings


def test_a_password_with_a_raw_at_sign_is_refused_with_the_percent_encoded_fix() -> None:
    [finding] = parse_database_secret("postgresql://ecomind:first-half@pw06@127.0.0.1:25432/ecomind").findings
    assert finding.severity == "error"
    assert "password" in finding.message and "'@'" in finding.message
    assert "'@' as %40" in finding.fix and "percent-encode" in finding.fix
    for fragment in ("first-half", "pw06", "127.0.0.1"):
        assert fragment not in finding.message + finding.fix


@pytest.mark.parametrize(
    ("password", "named", "encoded"),
    [
        ("1234/rest", "'/'", "%2F"),  # urlsplit: host 'u', port 1234; SQLAlchemy: the password
        ("/rest-of-it", "'/'", "%2F"),
        ("12?rest", "'?'", "%3F"),
        ("ab#rest", "'#'", "%23"),
        ("ab[rest", "'['", "%5B"),
        ("ab]rest", "']'", "%5D"),
        ("ab rest", "blank", "%20"),  # libpq refuses it, quoting the password
        ("ab%zzrest", "'%' that starts no %XX", "%25"),
    ],
)
def test_a_password_the_url_parsers_read_differently_is_refused_naming_the_character(
    password: str, named: str, encoded: str
) -> None:
    [finding] = parse_database_secret(f"postgresql://u:{password}@127.0.0.1:5432/db").findings
    assert named in finding.message and "password" in finding.message
    assert encoded in finding.fix
    assert "rest" not in finding.message + finding.fix


@pytest.mark.parametrize(
    ("url", "named"),
    [
        # Meant: the password up to the last '@'. Read by every parser: the host 'op-7781-piece'.
        ("postgresql://ecomind:first-half@op-7781-piece/tail@127.0.0.1:18432/ecomind", "'@' and '/'"),
        ("postgresql://ecomind:first-half@op-7781-piece?x=1@127.0.0.1:18432/ecomind", "'@' and '?'"),
        ("postgresql://ecomind:first-half@op-7781-piece#x=1@127.0.0.1:18432/ecomind", "'@' and '#'"),
        ("postgresql://ecomind:first-half@op-7781-piece/a?b#c@127.0.0.1:18432/ecomind", "'@', '/', '?' and '#'"),
        ("postgresql://ecomind:first-half@op-7781-piece:99/tail@127.0.0.1/ecomind", "'@' and '/'"),
        # The same two '@' whoever wrote it: the one of the query is encoded as well.
        ("postgresql://ecomind:first-half@127.0.0.1:5432/db?application_name=op-7781-piece@laptop", "'@', '/'"),
    ],
)
def test_a_url_with_an_at_sign_before_its_last_one_is_refused_with_the_percent_encoded_fix(
    url: str, named: str
) -> None:
    [finding] = parse_database_secret(url).findings
    assert finding.severity == "error"
    assert named in finding.message and "password" in finding.message
    assert "'@' as %40" in finding.fix and "percent-encode" in finding.fix
    assert "one raw '@', the one before the host" in finding.fix
    for fragment in ("first-half", "op-7781-piece", "tail", "x=1", "laptop"):
        assert fragment not in finding.message + finding.fix


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:ab%40cd%2Fe%3Ff%23g%25@127.0.0.1:5432/db",  # percent-encoded: all parsers agree
        "postgresql://u:a:b!$&'()*+,;=~@127.0.0.1:5432/db",
        "postgresql://u:p@127.0.0.1:5432/db?application_name=me%40laptop",
        "postgresql://localhost/db?application_name=me@laptop",  # one '@', and no user information
        "postgresql:///db?host=/var/run/postgresql&user=a@b",
    ],
)
def test_a_url_every_parser_reads_alike_is_accepted(url: str) -> None:
    assert parse_database_secret(url).findings == []
