"""A regional Secrets Manager outage: reads fail over to the replica, and come back.

moto's server keeps replicas in sync (a replica shares its primary's versions); the
counting proxy in front of it drops every request signed for a region that is "down",
as an unreachable endpoint would.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.secrets.errors import SecretNotFound, SettingsError
from app.secrets.refs import parse_reference
from app.secrets.store import SecretStore
from app.settings.loading import load_settings

from ..conftest import CANARY, ECOMIND, Aws, Database, assert_clean, opened
from ..support.awsproxy import AwsProxy
from ..support.environment import child_env

PRIMARY, REPLICA = "us-east-1", "us-west-2"
JWT = "f" * 48


@pytest.fixture
def replicated(aws: Aws, proxy: AwsProxy) -> Iterator[dict[str, str]]:
    """Two secrets in the primary region, replicated; the environment of a staging process."""
    for name, value in (("ecomind/staging/jwt", JWT), ("ecomind/staging/extra", f"redis://:{CANARY}@cache:6379/0")):
        aws.client.create_secret(Name=name, SecretString=value, AddReplicaRegions=[{"Region": REPLICA}])
    proxy.reset()
    yield {
        **aws.env,
        "ENVIRONMENT": "staging",
        "SECRETS_REPLICA_REGIONS": REPLICA,
        "DATABASE_URL": "postgresql://u:Pw-1234567@db.internal:5432/app",
        "JWT_SECRET": "aws-secretsmanager:ecomind/staging/jwt",
        "REDIS_URL": "aws-secretsmanager:ecomind/staging/extra",
    }
    proxy.down_regions.clear()


def calls(proxy: AwsProxy, region: str) -> int:
    return sum(n for (r, _), n in proxy.by_region.items() if r == region)


def test_a_cold_start_succeeds_from_the_replica_in_one_batch_call(proxy: AwsProxy, replicated: dict[str, str]) -> None:
    proxy.down_regions.add(PRIMARY)
    settings = opened(load_settings(replicated, env_file=None))
    assert settings.secret("JWT_SECRET").get().value.get_secret_value() == JWT
    assert settings.secret("JWT_SECRET").get().region == REPLICA
    # One attempt at the dead primary (no retries: a probe), then one batch at the replica.
    assert calls(proxy, PRIMARY) == 1, proxy.by_region
    assert proxy.by_region[(REPLICA, "BatchGetSecretValue")] == 1 and calls(proxy, REPLICA) == 1


def test_both_regions_down_names_both(proxy: AwsProxy, replicated: dict[str, str]) -> None:
    proxy.down_regions.update({PRIMARY, REPLICA})
    with pytest.raises(SettingsError) as info:
        load_settings(replicated, env_file=None)
    assert f"in any region asked: {PRIMARY} (unreachable), {REPLICA} (unreachable)" in str(info.value)
    assert CANARY not in str(info.value)


def test_a_listed_region_without_a_replica_is_passed_over_during_an_outage(
    proxy: AwsProxy, replicated: dict[str, str]
) -> None:
    # eu-west-1 is listed before the region that has the replicas: one being added, say.
    env = {**replicated, "SECRETS_REPLICA_REGIONS": f"eu-west-1,{REPLICA}"}
    proxy.down_regions.add(PRIMARY)
    settings = opened(load_settings(env, env_file=None))
    assert settings.secret("JWT_SECRET").get().value.get_secret_value() == JWT
    assert settings.secret("JWT_SECRET").get().region == REPLICA
    # With the region that has them down too, the message says what each region answered.
    proxy.down_regions.add(REPLICA)
    with pytest.raises(SettingsError) as info:
        load_settings(env, env_file=None)
    message = str(info.value)
    assert f"{PRIMARY} (unreachable), eu-west-1 (no replica), {REPLICA} (unreachable)" in message, message
    assert CANARY not in message


def test_a_rotation_made_before_the_outage_is_not_lost(aws: Aws, proxy: AwsProxy, replicated: dict[str, str]) -> None:
    rotated = "r" * 48
    aws.client.put_secret_value(SecretId="ecomind/staging/jwt", SecretString=rotated)
    proxy.down_regions.add(PRIMARY)
    settings = opened(load_settings(replicated, env_file=None))
    assert settings.secret("JWT_SECRET").get().value.get_secret_value() == rotated


def test_reads_return_to_the_primary_when_it_comes_back(proxy: AwsProxy, replicated: dict[str, str]) -> None:
    store = opened(SecretStore(ttl=300, region=PRIMARY, endpoint_url=proxy.url, replica_regions=[REPLICA]))
    store.aws.regions.cooldown = 0.5
    ref = parse_reference("aws-secretsmanager:ecomind/staging/jwt")
    proxy.down_regions.add(PRIMARY)
    assert store.get(ref).region == REPLICA
    assert store.aws.regions.is_open(PRIMARY)
    proxy.reset()
    assert store.refresh(ref).region == REPLICA  # while open, the failed region is asked last: not at all here
    assert calls(proxy, PRIMARY) == 0
    proxy.down_regions.clear()
    time.sleep(0.6)  # the cool-down is over: the next read probes the primary (half-open)
    assert store.refresh(ref).region == PRIMARY
    assert not store.aws.regions.is_open(PRIMARY)


def test_configuration_errors_never_fail_over(aws: Aws, proxy: AwsProxy, replicated: dict[str, str]) -> None:
    # A secret that exists in the replica's region only (not a replica): not found in the
    # primary is an answer, not an outage.
    aws.create("ecomind/staging/only-west", "x" * 40, region=REPLICA)
    store = opened(SecretStore(ttl=300, region=PRIMARY, endpoint_url=proxy.url, replica_regions=[REPLICA]))
    with pytest.raises(SecretNotFound):
        store.get(parse_reference("aws-secretsmanager:ecomind/staging/only-west"))
    assert not store.aws.regions.is_open(PRIMARY)


def test_5xx_from_the_primary_fails_over_too(proxy: AwsProxy, replicated: dict[str, str]) -> None:
    proxy.down_regions.add(PRIMARY)
    proxy.outage_mode = "5xx"
    store = opened(SecretStore(ttl=300, region=PRIMARY, endpoint_url=proxy.url, replica_regions=[REPLICA]))
    assert store.get(parse_reference("aws-secretsmanager:ecomind/staging/jwt")).region == REPLICA


def test_a_running_process_keeps_serving_and_a_second_one_starts(proxy: AwsProxy, replicated: dict[str, str]) -> None:
    running = opened(load_settings(replicated, env_file=None))
    assert running.secret("JWT_SECRET").get().region == PRIMARY
    proxy.down_regions.add(PRIMARY)
    assert running.secret("JWT_SECRET").get().value.get_secret_value() == JWT  # cached: no call at all
    env = child_env()
    second = subprocess.run(
        [ECOMIND, "config", "check", "--json"], env={**env, **replicated}, capture_output=True, text=True, timeout=60
    )
    assert second.returncode == 0, second.stdout + second.stderr
    rows = {r["variable"]: r for r in json.loads(second.stdout)["variables"]}
    assert rows["JWT_SECRET"]["region"] == REPLICA
    assert_clean(second, JWT)


def test_a_refused_password_asks_every_region_for_current_and_pending(
    aws: Aws, proxy: AwsProxy, database: Database
) -> None:
    from sqlalchemy import text

    from app.data.engine import make_engine

    os.environ["ENVIRONMENT"] = "development"  # the test server has no SSL
    try:
        aws.client.create_secret(
            Name="ecomind/staging/database", SecretString=database.rds_secret(), AddReplicaRegions=[{"Region": REPLICA}]
        )
        env = {
            **aws.env,
            "ENVIRONMENT": "development",
            "SECRETS_REPLICA_REGIONS": REPLICA,
            "DATABASE_URL": "aws-secretsmanager:ecomind/staging/database",
            "JWT_SECRET": JWT,
        }
        settings = opened(load_settings(env, env_file=None))
        engine = make_engine(settings, poolclass=__import__("sqlalchemy").pool.NullPool)
        database.set_password("refused-everywhere-" + "z" * 20)  # out of band: no version holds it
        proxy.reset()
        with pytest.raises(Exception, match="refused every password"):
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        for region in (PRIMARY, REPLICA):
            assert proxy.by_region[(region, "GetSecretValue")] >= 2, proxy.by_region  # AWSCURRENT and AWSPENDING
        engine.dispose()
    finally:
        os.environ.pop("ENVIRONMENT", None)


def test_ready_names_the_region_that_served(proxy: AwsProxy, replicated: dict[str, str], database: Database) -> None:
    from ..api.helpers import client

    proxy.down_regions.add(PRIMARY)
    env = {**replicated, "ENVIRONMENT": "development", "DATABASE_URL": database.url()}
    env.pop("REDIS_URL")
    with client(env) as api:
        body = api.get("/ready").json()
    assert body["status"] == "ready" and body["secrets"]["JWT_SECRET"]["region"] == REPLICA


def doctor(env: dict[str, str]) -> tuple[int, dict[str, dict[str, str]], str]:
    """``ecomind doctor --json --only JWT_SECRET``: exit code, checks by name, and all it printed."""
    base = child_env()
    ran = subprocess.run(
        [ECOMIND, "doctor", "--json", "--only", "JWT_SECRET"],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    checks = {c["name"]: c for c in json.loads(ran.stdout)["checks"]}
    return ran.returncode, checks, ran.stdout + ran.stderr


@pytest.mark.slow
def test_doctor_shows_each_replica_and_what_answers_when_the_primary_is_down(
    aws: Aws, proxy: AwsProxy, replicated: dict[str, str]
) -> None:
    env = {**replicated, "AWS_ENDPOINT_URL": proxy.url, "SECRETS_REPLICA_REGIONS": f"{REPLICA},eu-west-1"}
    database = {"engine": "postgres", "host": "db.internal", "port": 5432, "dbname": "app", "username": "app"}
    aws.client.create_secret(
        Name="ecomind/staging/database",
        SecretString=json.dumps({**database, "password": "Pw-" + "9" * 20}),
        AddReplicaRegions=[{"Region": REPLICA}],
    )
    # Healthy primary: a region the settings list but the secret is not replicated to is a
    # failure, and its fix, run as printed, replicates it.
    _, checks, printed = doctor(env)
    replicas = checks["JWT_SECRET replicas"]
    assert replicas["status"] == "fail" and "not replicated to eu-west-1" in replicas["detail"], replicas
    fix = replicas["fix"]
    provision = "ecomind secrets provision --environment staging --replica-region eu-west-1"
    assert fix.startswith(f"{provision} --region {PRIMARY}   # as the operator"), fix
    base = child_env(keep=("HOME", "LANG"))
    path = f"{Path(ECOMIND).parent}:{os.environ['PATH']}"
    ran = subprocess.run(
        ["bash", "-c", fix], env={**base, **env, "PATH": path}, capture_output=True, text=True, timeout=120
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    _, checks, printed = doctor(env)
    assert checks["JWT_SECRET replicas"]["status"] == "ok", checks["JWT_SECRET replicas"]
    assert f"{REPLICA} (InSync)" in checks["JWT_SECRET replicas"]["detail"]
    assert "eu-west-1 (InSync)" in checks["JWT_SECRET replicas"]["detail"]
    # The primary goes down: reads come from a replica, and the doctor says so, region by
    # region, instead of leaving the replica check out; what only the primary knows is not run.
    aws.client.remove_regions_from_replication(SecretId="ecomind/staging/jwt", RemoveReplicaRegions=["eu-west-1"])
    proxy.down_regions.add(PRIMARY)
    code, checks, printed = doctor({**env, "SECRETS_REPLICA_REGIONS": f"eu-west-1,{REPLICA}"})
    assert checks["JWT_SECRET readable"]["status"] == "ok"
    assert f"read in the replica region {REPLICA}" in checks["JWT_SECRET readable"]["detail"]
    replicas = checks["JWT_SECRET replicas"]
    assert replicas["status"] == "warn", replicas
    assert f"{PRIMARY} did not answer" in replicas["detail"]
    assert "eu-west-1 has no replica" in replicas["detail"] and f"{REPLICA} holds a replica" in replicas["detail"]
    assert replicas["fix"] == f"ecomind doctor   # again once {PRIMARY} answers"
    for check in ("JWT_SECRET rotation", "JWT_SECRET pending version"):
        assert checks[check]["status"] == "not_checked", checks[check]
    assert code == 8  # nothing failed, some checks could not run
    assert JWT not in printed and CANARY not in printed


def test_secrets_get_reads_a_replica_when_the_primary_is_down(proxy: AwsProxy, replicated: dict[str, str]) -> None:
    env = child_env(replicated)
    env["AWS_ENDPOINT_URL"] = proxy.url
    proxy.down_regions.add(PRIMARY)
    got = subprocess.run(
        [ECOMIND, "secrets", "get", "ecomind/staging/jwt"], env=env, capture_output=True, text=True, timeout=60
    )
    assert got.returncode == 0 and got.stdout == JWT + "\n", got.stderr


@pytest.mark.slow
def test_a_hung_secrets_manager_costs_a_waiting_request_seconds_and_one_read(
    aws: Aws, proxy: AwsProxy, replicated: dict[str, str]
) -> None:
    """A request that must read the JWT key again (the previous key after a rotation) while
    Secrets Manager hangs: a few seconds, shared by every request that needs it."""
    from concurrent.futures import ThreadPoolExecutor

    from app.auth.tokens import InvalidToken, TokenService

    env = {**replicated, "SECRETS_REPLICA_REGIONS": ""}
    settings = opened(load_settings(env, env_file=None))
    tokens = TokenService(settings)
    old, _ = tokens.issue(subject="u", org_id="o", role="OWNER")
    aws.client.put_secret_value(SecretId="ecomind/staging/jwt", SecretString="n" * 48)  # a rotation
    settings.secret("JWT_SECRET").refresh()  # the API follows it: the old token's key is AWSPREVIOUS
    proxy.outage_mode = "hang"
    proxy.down_regions.add(PRIMARY)
    proxy.reset()
    started = time.monotonic()
    with ThreadPoolExecutor(5) as pool:
        outcomes = list(pool.map(lambda _: _verify(tokens, old), range(5)))
    seconds = time.monotonic() - started
    proxy.down_regions.clear()
    assert outcomes == [InvalidToken] * 5  # refused while AWSPREVIOUS cannot be read...
    # ...after one read of AWSPREVIOUS and one of AWSCURRENT (the kid might be a newer key),
    # each of 2 attempts x 3 s, shared by the five: not 3 x 10 s per read per request.
    assert seconds < 16, seconds
    assert proxy.total <= 4, proxy.by_region
    time.sleep(TokenService.PREVIOUS_RETRY_INTERVAL)
    assert tokens.verify(old)["sub"] == "u"  # back: the previous key is read again


def _verify(tokens: object, token: str) -> object:
    try:
        tokens.verify(token)  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - the type is the outcome
        return type(exc)
    return None


@pytest.mark.slow
def test_with_json_logs_the_served_api_logs_its_failover_as_json(proxy: AwsProxy, replicated: dict[str, str]) -> None:
    """The lines an operator needs in an outage come from the prefetch child, before uvicorn starts."""
    import sys
    import tempfile

    from ..support.services import free_port

    proxy.down_regions.add(PRIMARY)
    base = child_env()
    env = {**base, **replicated, "ECOMIND_LOG_FORMAT": "json", "ECOMIND_METRICS": "off", "REDIS_URL": ""}
    env["SECRETS_REPLICA_REGIONS"] = f"eu-west-1,{REPLICA}"
    env["DATABASE_URL"] = "postgresql://u:Pw-1234567@127.0.0.1:9/app"  # refused: the start fails after
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.asgi:app", "--port", str(free_port())],
        env=env,
        cwd=tempfile.gettempdir(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = server.communicate(timeout=60)
    finally:
        server.kill()
    lines = [line for line in output.splitlines() if line.strip()]
    assert all(line.startswith("{") for line in lines), [x for x in lines if not x.startswith("{")]
    messages = [json.loads(line)["message"] for line in lines]
    assert any(f"Secrets Manager in {PRIMARY} failed" in m for m in messages), messages
    assert any("no replica in eu-west-1" in m for m in messages), messages
    assert JWT not in output and CANARY not in output


def test_describe_during_an_outage_prints_the_same_command_for_a_replica_region(
    proxy: AwsProxy, replicated: dict[str, str]
) -> None:
    base = child_env()
    env = {**base, **replicated, "AWS_ENDPOINT_URL": proxy.url}
    proxy.down_regions.add(PRIMARY)
    down = subprocess.run(
        [ECOMIND, "secrets", "describe", "ecomind/staging/jwt"], env=env, capture_output=True, text=True, timeout=60
    )
    assert down.returncode == 6, down.stderr
    [fix] = [line.split("fix: ", 1)[1] for line in down.stderr.splitlines() if "fix: " in line]
    assert fix.startswith(f"ecomind secrets describe ecomind/staging/jwt --region {REPLICA}"), fix
    shell = {**env, "PATH": f"{os.path.dirname(ECOMIND)}:{env['PATH']}"}
    ran = subprocess.run(["sh", "-c", fix], env=shell, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0 and f"{REPLICA} InSync" in ran.stdout, ran.stdout + ran.stderr
