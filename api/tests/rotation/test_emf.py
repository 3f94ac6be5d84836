"""The rotation functions' EMF lines, through the real Lambda handlers (real PostgreSQL, moto's server).

Each step prints one line on stdout: the catalog's namespace, metrics, units and
dimensions (app/telemetry.py), the step and version id as properties, and never a
value: the database password embeds the canary.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import botocore.exceptions
import pytest

from app.rotation import jwt, postgres
from app.rotation.protocol import STEPS, RotationError
from app.telemetry import CW_ROTATION_FAILURES, CW_ROTATION_SECONDS, EMF_NAMESPACE, CloudWatchMetric

from ..conftest import CANARY, Aws, Database
from .test_rotation import enable_rotation, logs_in, stage


def emf_lines(out: str) -> list[dict[str, Any]]:
    """The EMF lines of what a function printed (every stdout line that is an EMF object)."""
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [line for line in lines if "_aws" in line]


def value(line: dict[str, Any], metric: CloudWatchMetric) -> float:
    """A metric's value in a line: Powertools writes values as a list (EMF allows arrays), one per step here."""
    (only,) = line[metric.name]
    assert isinstance(only, int | float)
    return only


def assert_shape(line: dict[str, Any], *, failed: bool) -> None:
    """The catalog's namespace, dimensions, names and units; nothing but what the catalog and the properties name."""
    metrics = [CW_ROTATION_SECONDS, CW_ROTATION_FAILURES] if failed else [CW_ROTATION_SECONDS]
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == EMF_NAMESPACE
    assert directive["Dimensions"] == [list(CW_ROTATION_SECONDS.dimensions)]
    assert CW_ROTATION_FAILURES.dimensions == CW_ROTATION_SECONDS.dimensions  # else: one line per set of dimensions
    assert directive["Metrics"] == [{"Name": m.name, "Unit": m.unit} for m in metrics]
    assert set(line) == {"_aws", *CW_ROTATION_SECONDS.dimensions, "Step", "VersionId", *(m.name for m in metrics)}
    assert 0 <= value(line, CW_ROTATION_SECONDS) < 60
    if failed:
        assert value(line, CW_ROTATION_FAILURES) == 1


def event(name: str, token: str, step: str, **extra: Any) -> dict[str, Any]:
    return {"SecretId": name, "ClientRequestToken": token, "Step": step, **extra}


@pytest.fixture(autouse=True)
def _development(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # The test server has no SSL; the policy of staging or production would (rightly) refuse it.
    monkeypatch.setenv("ENVIRONMENT", "development")


def test_a_rotation_prints_one_line_per_step(aws: Aws, database: Database, capsys: pytest.CaptureFixture[str]) -> None:
    aws.create("emf/db", database.rds_secret())
    enable_rotation(aws, "emf/db")
    token = str(uuid.uuid4())
    # Secrets Manager creates the AWSPENDING version before createSecret; moto cannot, so the
    # local driver's flag lets createSecret create it. The other steps get exactly what AWS sends.
    postgres.handler(event("emf/db", token, "createSecret", LocalDriver=True))
    for step in STEPS[1:]:
        postgres.handler(event("emf/db", token, step), None)
    current = stage(aws, "emf/db", "AWSCURRENT")
    assert logs_in(current) and current["password"] != database.password
    captured = capsys.readouterr()
    lines = emf_lines(captured.out)
    assert [line["Step"] for line in lines] == list(STEPS)
    for line in lines:
        assert_shape(line, failed=False)
        assert (line["Environment"], line["Secret"], line["VersionId"]) == ("development", "database", token)
    text = captured.out + captured.err
    assert CANARY not in text and current["password"] not in text and database.password not in text


def test_a_refused_password_prints_the_failure_then_raises_it(
    aws: Aws, database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.create("emf/refused", database.rds_secret())
    enable_rotation(aws, "emf/refused")
    token = str(uuid.uuid4())
    postgres.handler(event("emf/refused", token, "createSecret", LocalDriver=True))
    database.set_password(f"{CANARY}-out-of-band")  # neither AWSCURRENT nor AWSPREVIOUS logs in now
    with pytest.raises(RotationError, match="neither AWSCURRENT nor AWSPREVIOUS logs in"):
        postgres.handler(event("emf/refused", token, "setSecret"))
    # The handler returned by raising: its line was printed before the failure left it.
    captured = capsys.readouterr()
    created, refused = emf_lines(captured.out)
    assert_shape(created, failed=False)
    assert_shape(refused, failed=True)
    assert (refused["Environment"], refused["Secret"], refused["Step"]) == ("development", "database", "setSecret")
    assert refused["VersionId"] == token
    pending = stage(aws, "emf/refused", "AWSPENDING")["password"]
    text = captured.out + captured.err
    assert CANARY not in text and pending not in text


def test_an_error_from_secrets_manager_is_counted_and_raised_unchanged(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    # Powertools would add a "service" dimension for this; the catalog has none.
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "ecomind-rotation")
    aws.create("emf/jwt", CANARY)
    token = str(uuid.uuid4())
    with pytest.raises(RotationError, match="rotation is not enabled"):
        jwt.handler(event("emf/jwt", token, "createSecret"))
    with pytest.raises(botocore.exceptions.ClientError) as missing:
        jwt.handler(event("emf/missing", token, "testSecret"))
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    captured = capsys.readouterr()
    disabled, not_found = emf_lines(captured.out)
    for line, step in ((disabled, "createSecret"), (not_found, "testSecret")):
        assert_shape(line, failed=True)
        assert (line["Environment"], line["Secret"], line["Step"]) == ("production", "jwt", step)
    assert CANARY not in captured.out + captured.err


def test_an_unknown_step_is_named_as_such_not_echoed(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    aws.create("emf/odd", "j" * 48)
    enable_rotation(aws, "emf/odd")
    with pytest.raises(RotationError, match="unknown step"):
        jwt.handler(event("emf/odd", CANARY, CANARY))
    captured = capsys.readouterr()
    (line,) = emf_lines(captured.out)
    assert line["Step"] == "unknown" and "VersionId" not in line and value(line, CW_ROTATION_FAILURES) == 1
    assert CANARY not in captured.out
