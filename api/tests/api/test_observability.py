"""The secret layer seen from outside (issue 15): /metrics, /ready's staleness, EMF lines, JSON logs.

Real PostgreSQL, Redis and moto (through the counting proxy when Secrets Manager must go away).
"""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.pool import NullPool

from app import telemetry
from app.main import create_app
from app.observe.logs import REQUEST_ID_HEADER
from app.observe.metrics import EmfReporter
from app.settings.knobs import Tuning
from app.settings.loading import load_settings

from ..conftest import CANARY, REGION, Aws, Database, opened
from ..support.awsproxy import AwsProxy
from ..support.environment import child_env
from ..support.polling import wait_until
from ..support.services import free_port
from .helpers import JWT, bearer, client, create_owner, login

DOC = Path(__file__).resolve().parents[3] / "docs" / "operations.md"


def scrape(api: TestClient) -> str:
    port = api.app.state.metrics_port  # type: ignore[attr-defined]
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200
    return response.text


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of ``name`` with exactly ``labels``, or None when there is no such sample."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return None


def references(aws: Aws, database: Database, name: str) -> dict[str, str]:
    aws.create(f"{name}/database", database.rds_secret())  # the password holds the canary
    aws.create(f"{name}/jwt", JWT)
    return {
        **aws.env,
        "ENVIRONMENT": "development",  # the test PostgreSQL has no SSL
        "DATABASE_URL": f"aws-secretsmanager:{name}/database",
        "JWT_SECRET": f"aws-secretsmanager:{name}/jwt",
    }


# -- the names -----------------------------------------------------------------------------


def test_the_metric_names_are_stable_and_listed_in_the_operations_doc() -> None:
    rows = re.findall(r"^\| `(ecomind_[a-z_]+)` \| (counter|gauge) \|([^|]*)\|", DOC.read_text(), re.M)
    documented = {name: (kind, tuple(re.findall(r"`([a-z_]+)`", labels))) for name, kind, labels in rows}
    catalog = {m.name: (m.kind, m.labels) for m in telemetry.METRICS}
    assert documented == catalog
    # Prometheus conventions: counters end in _total, seconds in _seconds; one prefix.
    for m in telemetry.METRICS:
        assert m.name.startswith("ecomind_")
        assert m.name.endswith("_total") == (m.kind == "counter"), m.name
        assert (m.unit == "s") == m.name.endswith("_seconds"), m.name
    for cause in telemetry.CAUSES:
        assert f"`{cause}`" in DOC.read_text()


def test_the_cloudwatch_side_of_the_catalog_holds_together() -> None:
    from app.telemetry import ALARMS, CLOUDWATCH, CW_ROTATION_FAILURES, CW_ROTATION_SECONDS, Alarm, CloudWatchMetric

    assert all(isinstance(m, CloudWatchMetric) for m in CLOUDWATCH)
    assert len({m.name for m in CLOUDWATCH}) == len(CLOUDWATCH)
    for alarm in ALARMS:
        assert isinstance(alarm, Alarm) and alarm.metric in CLOUDWATCH, alarm.key
        assert alarm.threshold == "STALE" or float(alarm.threshold) > 0, alarm.key
    # The rotation functions' metrics are per secret; the API's per variable.
    assert CW_ROTATION_FAILURES.dimensions == CW_ROTATION_SECONDS.dimensions == ("Environment", "Secret")
    assert {m.unit for m in CLOUDWATCH} <= {"Seconds", "Count"}  # what the EMF writer maps


# -- a scrape ------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_scrape_counts_what_happened_and_holds_no_secret_email_or_token(
    aws: Aws, migrated: Database, redis_url: str
) -> None:
    env = {**references(aws, migrated, "obs"), "REDIS_URL": redis_url}
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    with client(env, Tuning(login_failures_per_account="2/15 minutes")) as api:
        token = login(api, "owner@acme.io")
        assert api.get("/v1/auth/me", headers=bearer(token)).status_code == 200
        victim = {"email": "victim@acme.io", "password": CANARY}
        codes = [api.post("/v1/auth/login", json=victim).status_code for _ in range(3)]
        assert codes == [401, 429, 429]  # the second failure locks the account; the third is refused
        assert api.get("/metrics").status_code == 404  # not on the public router
        text = scrape(api)

    for m in telemetry.METRICS:
        assert f"# HELP {m.name} " in text, m.name  # every family is exposed, counted or not
    assert sample(text, "ecomind_login_failures_total") == 2
    assert sample(text, "ecomind_login_throttled_total", reason="account_locked") == 2
    assert sample(text, "ecomind_login_lockouts_total") == 1
    assert sample(
        text, "ecomind_secretsmanager_calls_total", operation="BatchGetSecretValue", result="ok", region=REGION
    )
    assert sample(text, "ecomind_secret_served_region", variable="JWT_SECRET", region=REGION) == 1
    since = sample(text, "ecomind_secret_since_refresh_seconds", variable="DATABASE_URL")
    assert since is not None and 0 <= since < 60
    age = sample(text, "ecomind_secret_value_age_seconds", variable="DATABASE_URL")
    assert age is not None and 0 <= age < 120
    assert sample(text, "ecomind_secret_stale", variable="JWT_SECRET") == 0
    assert sample(text, "ecomind_secret_since_refresh_seconds", variable="REDIS_URL") is None  # a plain value
    for leaked in (CANARY, migrated.password, JWT, token, "owner@acme.io", "victim@acme.io", "acme.io"):
        assert leaked not in text


# -- staleness -------------------------------------------------------------------------------


def test_an_api_that_sat_idle_is_not_stale_when_its_refresh_works(aws: Aws, migrated: Database) -> None:
    aws.create("idle/jwt", JWT)
    env = {
        **aws.env,
        "ENVIRONMENT": "development",
        "DATABASE_URL": migrated.url(),
        "JWT_SECRET": "aws-secretsmanager:idle/jwt",
        "SECRETS_CACHE_TTL": "1",
    }
    with client(env, Tuning(secrets_stale_after=2.0, ready_on_stale="fail")) as api:
        assert api.get("/ready").json()["checks"]["secrets"] == "ok"
        time.sleep(3.5)  # nothing reads: no refresh runs, and none fails
        woken = api.get("/ready")  # its read starts the refresh that was due
        assert woken.json()["secrets"]["JWT_SECRET"]["seconds_since_refresh"] > 2.0
        assert woken.status_code == 200 and woken.json()["checks"]["secrets"] == "ok", woken.text
        assert sample(scrape(api), "ecomind_secret_stale", variable="JWT_SECRET") == 0


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["report", "fail"])
def test_a_failing_refresh_moves_staleness_and_past_the_threshold_ready(
    aws: Aws, proxy: AwsProxy, migrated: Database, mode: str
) -> None:
    aws.create("stale/jwt", JWT)
    env = {
        **aws.env,
        "ENVIRONMENT": "development",
        "DATABASE_URL": migrated.url(),
        "JWT_SECRET": "aws-secretsmanager:stale/jwt",
        "SECRETS_CACHE_TTL": "1",
    }
    stale_after = 6.0
    with client(env, Tuning(secrets_stale_after=stale_after, ready_on_stale=mode)) as api:
        first = api.get("/ready")
        assert first.status_code == 200 and first.json()["checks"]["secrets"] == "ok"

        proxy.down_regions.add(REGION)  # Secrets Manager stops answering

        def failures() -> float:
            return (
                sample(scrape(api), "ecomind_secret_refresh_failures_total", variable="JWT_SECRET", cause="unreachable")
                or 0
            )

        # A blip: refreshes fail, the last good value serves, and readiness does not move.
        blip = wait_until(lambda: failures() >= 1 and api.get("/ready"), 20, "a failed refresh counted")
        body = blip.json()
        assert body["secrets"]["JWT_SECRET"]["seconds_since_refresh"] < stale_after  # seen while a blip
        assert blip.status_code == 200 and body["checks"]["secrets"] == "ok" and body["status"] == "ready"
        assert sample(
            scrape(api),
            "ecomind_secretsmanager_calls_total",
            operation="GetSecretValue",
            result="unreachable",
            region=REGION,
        )

        # Past the threshold: stale, reported; failing readiness only when asked to.
        stale = wait_until(lambda: (r := api.get("/ready")).json()["checks"]["secrets"] == "stale" and r, 30, "stale")
        if mode == "report":
            assert stale.status_code == 200 and stale.json()["status"] == "degraded"
        else:
            assert stale.status_code == 503 and stale.json()["status"] == "unavailable"
        assert stale.json()["checks"]["database"] == "ok"
        text = scrape(api)
        assert sample(text, "ecomind_secret_stale", variable="JWT_SECRET") == 1
        assert (sample(text, "ecomind_secret_since_refresh_seconds", variable="JWT_SECRET") or 0) > stale_after
        assert sample(text, "ecomind_secret_stale_threshold_seconds") == stale_after

        proxy.down_regions.clear()  # back: the next refresh succeeds and readiness follows
        back = wait_until(lambda: (r := api.get("/ready")).json()["checks"]["secrets"] == "ok" and r, 30, "fresh again")
        assert back.status_code == 200 and back.json()["status"] == "ready"
        assert CANARY not in back.text


# -- a rotation followed -------------------------------------------------------------------


def test_a_secret_scheduled_for_deletion_is_not_found_in_both_counters(aws: Aws) -> None:
    from app.secrets.errors import SecretDeleted
    from app.secrets.refs import parse_reference
    from app.secrets.store import SecretStore
    from app.telemetry import SM_CALLS

    aws.create("deleting/jwt", JWT)
    store = opened(SecretStore(ttl=300, region=REGION, endpoint_url=aws.env["AWS_ENDPOINT_URL"]))
    ref = parse_reference("aws-secretsmanager:deleting/jwt")
    store.get(ref)
    aws.client.delete_secret(SecretId="deleting/jwt", RecoveryWindowInDays=7)
    with pytest.raises(SecretDeleted):
        store.refresh(ref)
    calls = {labels[1] for labels in store.stats.counts(SM_CALLS) if labels[0] == "GetSecretValue"}
    assert calls == {"ok", "not_found"}, store.stats.counts(SM_CALLS)  # the first read, then the refresh
    health = store.health(ref)
    assert health is not None and health.failures == {"not_found": 1}  # ecomind_secret_refresh_failures_total


def test_a_password_rotation_shows_one_refused_then_recovered_login(aws: Aws, migrated: Database) -> None:
    env = references(aws, migrated, "rot")
    app = create_app(
        load=lambda: load_settings(env, env_file=None),
        engine_options={"poolclass": NullPool},  # every request opens a connection: each one logs in
        tuning=Tuning(metrics_port=0),
    )
    with TestClient(app) as api:
        assert api.get("/ready").status_code == 200
        before = scrape(api)
        assert sample(before, "ecomind_database_password_refusals_total") == 0

        rotated = "rotated-" + CANARY[-12:] + "-pw"
        migrated.set_password(rotated)  # what the rotation's setSecret step does...
        aws.client.put_secret_value(
            SecretId="rot/database", SecretString=migrated.rds_secret(rotated)
        )  # ...finishSecret

        for _ in range(3):
            assert api.get("/ready").status_code == 200  # no request fails
        text = scrape(api)
    assert sample(text, "ecomind_database_password_refusals_total") == 1
    assert sample(text, "ecomind_database_password_recoveries_total", stage="AWSCURRENT") == 1
    assert (sample(text, "ecomind_secret_refresh_attempts_total", variable="DATABASE_URL") or 0) >= 1
    assert rotated not in text and CANARY not in text


# -- EMF -----------------------------------------------------------------------------------------


def test_emf_lines_carry_the_alarmed_metrics_and_no_value(
    aws: Aws, migrated: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = opened(load_settings(references(aws, migrated, "emf"), env_file=None))
    reporter = EmfReporter(settings, stale_after=900, interval=3600)
    try:
        reporter.report()
    finally:
        reporter.close()
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    seen: dict[tuple[str, str], float] = {}
    for line in lines:
        directive = line["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == telemetry.EMF_NAMESPACE
        assert directive["Dimensions"] == [list(telemetry.CW_SINCE_REFRESH.dimensions)]
        assert line["Environment"] == "development"
        for metric in directive["Metrics"]:
            seen[(line["Variable"], metric["Name"])] = line[metric["Name"]][0]
    names = {telemetry.CW_SINCE_REFRESH.name, telemetry.CW_REFRESH_FAILURES.name}
    assert {(v, n) for v in ("DATABASE_URL", "JWT_SECRET") for n in names} == set(seen)
    assert 0 <= seen[("JWT_SECRET", telemetry.CW_SINCE_REFRESH.name)] < 60
    assert seen[("JWT_SECRET", telemetry.CW_REFRESH_FAILURES.name)] == 0
    assert CANARY not in out and JWT not in out


# -- logs ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_json_logs_carry_the_request_id_and_no_secret(live_api: Callable[..., Any], migrated: Database) -> None:
    api = live_api(
        {"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT, "ECOMIND_LOG_FORMAT": "json", "ENVIRONMENT": "development"}
    )
    with api.client() as http:
        http.get("/ready")  # the first request waits for the lifespan
        given = http.get("/ready", headers={REQUEST_ID_HEADER: "deploy-42.check_7"})
        assert given.headers[REQUEST_ID_HEADER] == "deploy-42.check_7"
        made = http.get("/ready", headers={REQUEST_ID_HEADER: "not a token; DROP"})
        assert re.fullmatch(r"[0-9a-f]{32}", made.headers[REQUEST_ID_HEADER])
        http.post("/v1/auth/login", json={"email": "x@y.io", "password": CANARY})

    def access_line() -> dict[str, Any] | None:
        for line in api.output().splitlines():
            if line.startswith("{") and "deploy-42.check_7" in line:
                return dict(json.loads(line))
        return None

    record = wait_until(access_line, 10, "the access line, as JSON")
    assert record["request_id"] == "deploy-42.check_7" and record["logger"] == "uvicorn.access"
    assert {"time", "level", "message"} <= set(record)
    # Every line is JSON, uvicorn's own from the start ("Started server process") included.
    lines = [line for line in api.output().splitlines() if line.strip()]
    assert all(line.startswith("{") for line in lines), [x for x in lines if not x.startswith("{")]
    assert any("Started server process" in json.loads(line)["message"] for line in lines)
    assert "\x1b" not in api.output() and "\\u001b" not in api.output()  # no terminal colours in a log
    assert CANARY not in api.output() and migrated.password not in api.output()


@pytest.mark.slow
def test_an_unhandled_error_is_a_500_with_its_request_id_and_no_sql_parameters(
    live_api: Callable[..., Any], migrated: Database
) -> None:
    import psycopg

    create_owner(migrated.url(), "Acme", "owner@acme.io")
    api = live_api(
        {"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT, "ECOMIND_LOG_FORMAT": "json", "ENVIRONMENT": "development"}
    )
    with api.client() as http:
        token = login(http, "owner@acme.io")
        org = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==").decode())["org"]
        with psycopg.connect(migrated.url(), autocommit=True) as conn:  # a bug: a table the code expects is gone
            conn.execute("ALTER TABLE usage_events RENAME TO usage_events_gone")
        try:
            broken = http.get("/v1/events/summary", headers={**bearer(token), REQUEST_ID_HEADER: "trace-500-b"})
        finally:
            with psycopg.connect(migrated.url(), autocommit=True) as conn:
                conn.execute("ALTER TABLE usage_events_gone RENAME TO usage_events")
    assert broken.status_code == 500 and broken.json() == {"detail": "internal server error"}
    assert broken.headers[REQUEST_ID_HEADER] == "trace-500-b"

    def lines() -> list[dict[str, Any]] | None:
        found = [json.loads(x) for x in api.output().splitlines() if x.startswith("{") and "trace-500-b" in x]
        return found if len(found) >= 2 else None

    records = wait_until(lines, 10, "the error and access lines, with the id")
    error = next(r for r in records if r["logger"] == "app.requests")
    assert error["level"] == "ERROR" and "UndefinedTable" in error["exc_info"]
    assert any(r["logger"] == "uvicorn.access" and " 500" in r["message"] for r in records)
    assert "Exception in ASGI application" not in api.output()  # answered, not left to the server
    assert org not in api.output()  # hide_parameters: the statement's parameters are not logged


@pytest.mark.slow
def test_responses_and_database_refusals_are_counted(migrated: Database) -> None:
    import psycopg

    create_owner(migrated.url(), "Acme", "owner@acme.io")
    env = {"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT, "ENVIRONMENT": "development"}
    with client(env) as api:
        token = login(api, "owner@acme.io")
        assert api.get("/v1/events/summary", headers=bearer(token)).status_code == 200
        assert api.get("/v1/events/summary").status_code == 401
        text = scrape(api)
        assert (sample(text, "ecomind_http_responses_total", status_class="2xx") or 0) >= 2  # the login too
        assert sample(text, "ecomind_http_responses_total", status_class="4xx") == 1
        assert sample(text, "ecomind_database_unavailable_total") == 0
        # The database refuses the app's password (changed out of band) and its connections end.
        migrated.set_password("changed-out-of-band-" + "q" * 20)
        with psycopg.connect(migrated.admin_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (migrated.user,))
        refused = api.get("/v1/events/summary", headers=bearer(token))
        assert refused.status_code == 503, refused.text
        text = scrape(api)
        assert sample(text, "ecomind_database_unavailable_total") == 1
        assert sample(text, "ecomind_http_responses_total", status_class="5xx") == 1


def serve_once(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``uvicorn app.asgi:app`` as the image runs it, in a process of its own, until it exits."""
    return subprocess.run(
        [sys.executable, "-m", "uvicorn", "app.asgi:app", "--port", str(free_port())],
        env=env,
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
def test_a_served_api_with_an_unusable_knob_says_so_in_one_line_and_exits_3() -> None:
    env = child_env()
    env.update({"ECOMIND_READY_ON_STALE": "maybe", "ECOMIND_LOG_FORMAT": "json", "JWT_SECRET": CANARY})
    ran = serve_once(env)
    assert ran.returncode == 3, ran.stderr
    [line] = [x for x in ran.stderr.splitlines() if x.strip()]
    assert json.loads(line)["message"] == "ECOMIND_READY_ON_STALE must be report or fail"
    assert "Traceback" not in ran.stderr and CANARY not in ran.stdout + ran.stderr


@pytest.mark.slow
@pytest.mark.parametrize("failure", ["metrics port in use", "metrics host unresolvable", "database down"])
def test_a_served_api_that_cannot_start_says_why_in_one_line_with_the_fix(migrated: Database, failure: str) -> None:
    env = child_env()
    env.update(DATABASE_URL=migrated.url(), JWT_SECRET=JWT)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        if failure == "metrics port in use":
            env["ECOMIND_METRICS_PORT"], needle = str(taken), f"cannot serve metrics on 127.0.0.1:{taken}"
        elif failure == "metrics host unresolvable":
            env["ECOMIND_METRICS_HOST"], needle = "no-such-host.invalid", "fix: set ECOMIND_METRICS_HOST to an address"
        else:  # nothing listens on the port of DATABASE_URL
            env["DATABASE_URL"] = migrated.url().replace(f":{migrated.port}/", f":{free_port()}/")
            env["ECOMIND_METRICS_PORT"], needle = "0", "cannot connect to the database"
        ran = serve_once(env)
    assert ran.returncode == 3, ran.stderr  # uvicorn's code for a failed start, as for an unusable knob
    said = [x for x in ran.stderr.splitlines() if needle in x]
    assert len(said) == 1 and "the API cannot start" in said[0] and "fix:" in said[0], ran.stderr
    assert "Traceback" not in ran.stderr and 'File "' not in ran.stderr, ran.stderr
    assert CANARY not in ran.stdout + ran.stderr


@pytest.mark.slow
def test_a_deployed_start_whose_password_is_refused_says_so_in_one_line_with_the_doctors_fix(
    migrated: Database, aws: Aws
) -> None:
    aws.create("ecomind/staging/database", migrated.url(password="Not-the-password-1") + "?sslmode=disable")
    env = child_env({**aws.env, "ENVIRONMENT": "staging", "JWT_SECRET": JWT * 2, "ECOMIND_METRICS_PORT": "0"})
    ran = serve_once(env)
    assert ran.returncode == 3, ran.stderr
    said = [x for x in ran.stderr.splitlines() if "refused every password" in x]
    assert len(said) == 1 and "the API cannot start" in said[0], ran.stderr
    fix = said[0].split("fix: ", 1)[1]
    assert fix.startswith("ecomind secrets rotate ecomind/staging/database --local --master-url-file "), fix
    assert f"--region {REGION}" in fix and f"127.0.0.1:{migrated.port}" in fix and "ecomind-staging-rotation" in fix
    assert "Not-the-password-1" not in ran.stdout + ran.stderr


def test_knobs_that_cannot_be_used_are_named() -> None:
    from app.settings.knobs import TuningError

    with pytest.raises(TuningError) as info:
        Tuning.from_env(
            {"ECOMIND_READY_ON_STALE": "maybe", "ECOMIND_LOG_FORMAT": "xml", "ECOMIND_METRICS_PORT": "70000"}
        )
    for name in ("ECOMIND_READY_ON_STALE", "ECOMIND_LOG_FORMAT", "ECOMIND_METRICS_PORT"):
        assert name in str(info.value)
    assert Tuning(secrets_stale_after=0).stale_after(300) == 3 * 300


# -- a prefetched start (app/asgi.py) --------------------------------------------------------------


@pytest.mark.slow
def test_the_served_api_starts_from_what_its_prefetch_fetched(
    live_api: Callable[..., Any], aws: Aws, proxy: AwsProxy, migrated: Database
) -> None:
    env = {k: v for k, v in references(aws, migrated, "pre").items()}
    proxy.reset()
    api = live_api(env)  # uvicorn app.asgi:app: a child resolves while the server imports
    with api.client() as http:
        ready = wait_until(lambda: (r := http.get("/ready")).status_code == 200 and r, 60, "ready")
    assert ready.json()["checks"]["database"] == "ok"
    # One batch call for both secrets, made by the child; the server asked nothing more.
    assert dict(proxy.counts) == {"BatchGetSecretValue": 1}, dict(proxy.counts)

    # The mechanism, in a process of its own: the parent loads its settings from the child's
    # versions and never imports botocore (it would have, to fetch them itself).
    probe = (
        "import sys\n"
        "from pathlib import Path\n"
        "from app import prefetch\n"
        "from app.settings.loading import load_settings\n"
        "pending = prefetch.start(Path('.env'))\n"
        "versions = pending.versions()\n"
        "settings = load_settings(env_file=Path('.env'), prefetched=versions)\n"
        "assert settings.secret('JWT_SECRET').get().value.get_secret_value()\n"
        "print(len(versions), 'botocore' in sys.modules, pending.calls)\n"
        "settings.close()\n"
    )
    proxy.reset()
    base = child_env()
    done = subprocess.run(
        [sys.executable, "-c", probe], env={**base, **env}, cwd=tempfile.gettempdir(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[:2] == ["2", "False"], done.stdout
    assert "BatchGetSecretValue" in done.stdout and dict(proxy.counts) == {"BatchGetSecretValue": 1}
    assert CANARY not in done.stdout + done.stderr


@pytest.mark.slow
def test_a_failed_prefetch_changes_nothing_but_who_reports(aws: Aws, migrated: Database) -> None:
    env = {**references(aws, migrated, "pre2"), "JWT_SECRET": "aws-secretsmanager:pre2/missing"}
    base = child_env(keep=("PATH", "HOME", "LANG", "ECOMIND_METRICS_PORT"))
    runs = {}
    for prefetch in ("on", "off"):
        done = subprocess.run(
            [sys.executable, "-m", "uvicorn", "app.asgi:app", "--port", str(free_port())],
            env={**base, **env, "ECOMIND_PREFETCH": prefetch},
            cwd=tempfile.gettempdir(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode != 0
        runs[prefetch] = [line for line in done.stderr.splitlines() if "pre2/missing" in line]
        assert CANARY not in done.stdout + done.stderr
    # The server reports the error itself, once, word for word as without the prefetch.
    assert runs["on"] == runs["off"] and len(runs["on"]) == 1, runs


# -- the listener's connections ------------------------------------------------------------


def _closed_by_server(sock: socket.socket, by: float) -> bool:
    """Whether the server closes ``sock`` before ``by`` (a monotonic time), having sent nothing."""
    sock.settimeout(max(0.1, by - time.monotonic()))
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_idle_connections_to_the_metrics_port_make_room_for_a_scrape_and_are_closed(
    migrated: Database, caplog: pytest.LogCaptureFixture
) -> None:
    timeout, cap, opened = 1, 4, 12
    tuning = Tuning(metrics_port=0, metrics_timeout=timeout, metrics_max_connections=cap)
    with client({"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT}, tuning) as api:
        port = api.app.state.metrics_port  # type: ignore[attr-defined]
        idle: list[socket.socket] = []
        try:
            started = time.monotonic()
            for _ in range(opened):  # each connects and sends nothing, or half a request
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                if len(idle) % 2:
                    sock.sendall(b"GET /metrics HTTP/1.1\r\n")
                idle.append(sock)
                time.sleep(0.02)
            # Beyond the cap the connection open longest makes room: the first ones are closed at once.
            assert all(_closed_by_server(sock, time.monotonic() + 1.5) for sock in idle[: opened - cap])
            # While the newest hold every slot, a scrape still gets in (200), in place of the oldest.
            scrape(api)
            assert all(_closed_by_server(sock, started + timeout + 2) for sock in idle[opened - cap :])
            assert time.monotonic() - started < timeout + 2
        finally:
            for sock in idle:
                sock.close()
    said = [r.getMessage() for r in caplog.records if "metrics listener" in r.getMessage()]
    assert len(said) == 1, said  # a flood is one line, with a count
    assert "closed the one open longest for a new one" in said[0], said
