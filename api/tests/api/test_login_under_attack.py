"""Logins under attack, on real PostgreSQL, Redis and moto.

- a success in another organisation does not reset this one's failures; audit rows stay home
- parallel guesses cannot check more passwords than the limit; no token while locked
- the address the limits count: the client's behind the load balancer, the peer's in dev
- a frozen PostgreSQL: 503 within a bound, and /health at once
- a Secrets Manager blip after a JWT rotation does not refuse older tokens for good
- signed tokens with claims we never sign are 401, never 500
- a login takes as long whatever the number of organisations of the email
- a flood of refused logins writes one audit row per lockout or limit, not one per 429
- limits that cannot work are refused at start (tests/api/test_security_doc.py)
- an operator can lift a lockout now: ecomind users unlock
- create-admin --org acme joins the organisation Acme, never makes a second one
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt
import psycopg
import pytest
import redis
from argon2 import PasswordHasher

from app.auth.limits import Attempt, Keys, LoginThrottle, Refusal
from app.auth.tokens import InvalidToken, TokenService
from app.data.local import LocalPostgres, LocalRedis, ensure_role_and_database, port_open, terminate
from app.settings.knobs import Tuning
from app.settings.loading import load_settings

from ..conftest import CANARY, ECOMIND, REGION, Aws, Cli, Database, assert_clean, migrate, opened
from ..support.awsproxy import AwsProxy
from ..support.environment import child_env
from ..support.polling import still_running, wait_until
from ..support.services import free_port
from .helpers import JWT, OWNER_PASSWORD, bearer, client, create_owner, login, shipped_flags

KNOWN = "evil-knows-this-pass-phrase-7"


def sql(db: Database, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(db.url()) as conn:
        cursor = conn.execute(query, params or None)
        rows = cursor.fetchall() if cursor.description else []
        conn.commit()
    return rows


def attempt(api: Any, email: str, password: str = "not-the-password", **extra: Any) -> Any:
    return api.post("/v1/auth/login", json={"email": email, "password": password, **extra})


def org_of(db: Database, name: str) -> uuid.UUID:
    [(org_id,)] = sql(db, "SELECT id FROM orgs WHERE name = %s", name)
    return org_id  # type: ignore[no-any-return]


# -- 1. memberships in several organisations ----------------------------------------------


@pytest.mark.slow
def test_a_success_in_another_organisation_neither_resets_failures_nor_reads_the_audit(
    migrated: Database, redis_url: str
) -> None:
    create_owner(migrated.url(), "Acme", "victim@acme.io")
    create_owner(migrated.url(), "Evil", "boss@evil.io", password="the-evil-owners-secret-9")
    acme, evil = org_of(migrated, "Acme"), org_of(migrated, "Evil")
    env = {"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT, "REDIS_URL": redis_url}
    with client(env, Tuning(login_failures_per_account="3/15 minutes")) as api:
        assert attempt(api, "victim@acme.io").status_code == 401  # one membership: Acme's concern
        boss = login(api, "boss@evil.io", "the-evil-owners-secret-9")
        # Evil's admin gives the victim's email a user in Evil, with a password Evil knows.
        body = {"email": "victim@acme.io", "password": KNOWN, "role": "VIEWER"}
        assert api.post("/v1/users", json=body, headers=bearer(boss)).status_code == 201
        # A guess at Acme's password, then a success with Evil's: the guesses still add up.
        codes = [attempt(api, "victim@acme.io").status_code, attempt(api, "victim@acme.io", KNOWN).status_code]
        codes.append(attempt(api, "victim@acme.io").status_code)
        assert codes == [401, 200, 429]  # the third failure of the window locks the email
        assert attempt(api, "victim@acme.io", OWNER_PASSWORD).status_code == 429
    rows = sql(migrated, "SELECT org_id, action, detail->>'address' FROM audit_events WHERE action LIKE 'auth.%'")
    failures = [(org, action) for org, action, _ in rows if action != "auth.login"]
    assert failures[0] == (acme, "auth.login_failed")
    # Once the email has two memberships, a failure concerns no organisation in particular:
    # Evil never sees the failures (nor the address) of logins aimed at Acme's member.
    assert {org for org, _ in failures[1:]} == {None}
    assert not [r for r in rows if r[0] == evil and r[1] != "auth.login"]
    # A login that names its organisation concerns that one.
    with client(env) as api:
        assert attempt(api, "boss@evil.io", org_id=str(evil)).status_code == 401
    assert sql(migrated, "SELECT org_id FROM audit_events ORDER BY id DESC LIMIT 1") == [(evil,)]


# -- 2. parallel guesses -------------------------------------------------------------------


def _parallel(url: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    """Each body from its own client, released together."""
    barrier = threading.Barrier(len(bodies))

    def send(body: dict[str, Any]) -> httpx.Response:
        with httpx.Client(base_url=url, timeout=60) as http:
            barrier.wait()
            return http.post("/v1/auth/login", json=body)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(send, bodies))


@pytest.mark.slow
def test_parallel_guesses_check_at_most_the_limit_of_passwords(
    migrated: Database, redis_url: str, live_api: Any
) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    api = live_api(
        {
            "DATABASE_URL": migrated.url(),
            "JWT_SECRET": JWT,
            "REDIS_URL": redis_url,
            "ECOMIND_LOGIN_FAILURES_PER_ADDRESS": "1000/minute",
            "ECOMIND_LOGIN_FAILURES_PER_ACCOUNT": "5/15 minutes",
        }
    )
    # Eight workers of one account logging in at once: those beyond the five in flight are
    # refused at once, no failure counted, and their retry a moment later logs in.
    right = {"email": "owner@acme.io", "password": OWNER_PASSWORD}
    first = _parallel(api.url, [right] * 8)
    assert {r.status_code for r in first} <= {200, 429} and 200 in {r.status_code for r in first}
    busy = [r for r in first if r.status_code == 429]
    assert all(r.headers["Retry-After"] == "1" and "locked" not in r.text for r in busy)
    assert [r.status_code for r in _parallel(api.url, [right] * len(busy))] == [200] * len(busy)
    guesses = [{"email": "owner@acme.io", "password": f"guess-{n}"} for n in range(18)]
    codes = [r.status_code for r in _parallel(api.url, guesses)]
    checked = sql(migrated, "SELECT count(*) FROM audit_events WHERE action = 'auth.login_failed'")[0][0]
    assert checked == 5, codes  # passwords checked: the limit's worth, not 18
    assert sorted(codes) == [401] * 4 + [429] * 14, codes
    assert sql(migrated, "SELECT count(*) FROM audit_events WHERE action = 'auth.lockout'") == [(1,)]
    with api.client() as http:  # locked: the right password gets nothing either
        assert attempt(http, "owner@acme.io", OWNER_PASSWORD).status_code == 429


@pytest.mark.slow
def test_no_token_when_the_account_got_locked_while_its_password_was_checked(
    migrated: Database, redis_url: str, live_api: Any
) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    # A stored hash that takes about a second to check, so the login is surely in flight.
    slow = PasswordHasher(time_cost=60, memory_cost=19456, parallelism=1).hash(OWNER_PASSWORD)
    sql(migrated, "UPDATE users SET password_hash = %s", slow)
    api = live_api({"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT, "REDIS_URL": redis_url})
    keys = Keys.of("127.0.0.1", "owner@acme.io")
    with redis.Redis.from_url(redis_url) as r, ThreadPoolExecutor(1) as pool, api.client() as http:
        answer = pool.submit(attempt, http, "owner@acme.io", OWNER_PASSWORD)
        # The login holds its slot: its password is being checked.
        wait_until(lambda: not answer.done() and r.zcard(keys.pending), 30, "the login taking its slot", 0.01)
        r.set(keys.lock, b"1", ex=30)  # another replica locked the account meanwhile
        response = answer.result(60)
    assert response.status_code == 429, response.text
    assert "access_token" not in response.text
    [(reason,)] = sql(migrated, "SELECT detail->>'reason' FROM audit_events WHERE action = 'auth.login_refused'")
    assert reason == "account_locked"


def throttled(api: Any, reason: str) -> float:
    """``ecomind_login_throttled_total{reason=...}`` as scraped from the metrics port."""
    scraped = httpx.get(f"http://127.0.0.1:{api.app.state.metrics_port}/metrics", timeout=10).text
    line = f'ecomind_login_throttled_total{{reason="{reason}"}} '
    return sum(float(row[len(line) :]) for row in scraped.splitlines() if row.startswith(line))


@pytest.mark.slow
def test_a_flood_of_refused_logins_writes_one_audit_row_per_period(migrated: Database, redis_url: str) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    tuning = Tuning(login_failures_per_account="3/15 minutes", login_failures_per_address="50/minute")
    env = {"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT, "REDIS_URL": redis_url}
    with client(env, tuning) as api:
        codes = [attempt(api, "owner@acme.io").status_code for _ in range(40)]
        assert codes == [401, 401] + [429] * 38
        assert throttled(api, "account_locked") == 38  # every 429 is counted, as a number
    # Rows: the failure that locked it, with its lockout; none of the refusals while locked.
    refused = sql(migrated, "SELECT detail->>'reason' FROM audit_events WHERE action = 'auth.login_refused'")
    assert refused == [("account_locked",)]
    assert len(sql(migrated, "SELECT 1 FROM audit_events WHERE action = 'auth.lockout'")) == 1
    # An address over its limit: one row for the whole period, whichever emails it tries.
    with redis.Redis.from_url(redis_url) as r:  # the failures above count against the address too
        r.delete(*r.keys(Keys.PREFIX + "address*"))
    tuning = Tuning(login_failures_per_address="3/minute", login_failures_per_account="100/minute")
    with client(env, tuning) as api:
        codes = [attempt(api, f"user{n}@acme.io").status_code for n in range(30)]
        assert codes == [401] * 3 + [429] * 27
        assert throttled(api, "address_limited") == 27
    rows = sql(migrated, "SELECT 1 FROM audit_events WHERE detail->>'reason' = 'address_limited'")
    assert len(rows) == 1


@pytest.mark.parametrize("storage", ["redis", "memory"])
def test_the_throttle_reserves_slots_alike_in_redis_and_in_memory(storage: str, redis_url: str) -> None:
    """The same rules on both storages (memory is what runs while Redis is down)."""
    tuning = Tuning(login_failures_per_account="3/15 minutes", login_failures_per_address="5/minute")
    with redis.Redis.from_url(redis_url) as client:
        throttle = LoginThrottle(tuning, client if storage == "redis" else None)
        held = [throttle.admit("10.0.0.1", "a@acme.io") for _ in range(3)]
        assert all(isinstance(a, Attempt) for a in held)
        # Three in flight fill the account's window: a fourth is refused at once, as busy (no
        # failure, nothing reported), and admitted once one of them ended.
        assert throttle.admit("10.0.0.1", "a@acme.io") == Refusal("account_busy", 1, audit=False)
        throttle.release(held[0])  # ended without a verdict: its slot is free again
        held[0] = throttle.admit("10.0.0.1", "a@acme.io")
        assert isinstance(held[0], Attempt)
        assert throttle.admit("10.0.0.1", "a@acme.io") == Refusal("account_busy", 1, audit=False)
        assert throttle.failed(held[0]) is None and throttle.failed(held[1]) is None  # type: ignore[arg-type]
        locked = throttle.failed(held[2])  # type: ignore[arg-type]
        assert locked == Refusal("account_locked", 60, lockout_started=True, lockout_level=1)
        late = throttle.admit("10.0.0.2", "a@acme.io")
        assert isinstance(late, Refusal) and late.reason == "account_locked" and 59 <= late.retry_after <= 60
        # The address has failed three times; two more attempts in flight fill its window, for
        # a moment: busy, not limited.
        others = [throttle.admit("10.0.0.1", f"{n}@acme.io") for n in range(2)]
        assert throttle.admit("10.0.0.1", "b@acme.io") == Refusal("address_busy", 1, audit=False)
        assert throttle.succeeded(others[0]) is None  # type: ignore[arg-type]
        fifth = throttle.admit("10.0.0.1", "b@acme.io")
        assert isinstance(fifth, Attempt)  # a success gave its slot back
        # Five failures fill it: limited until the oldest leaves the window.
        assert throttle.failed(others[1]) is None and throttle.failed(fifth) is None  # type: ignore[arg-type]
        limited = throttle.admit("10.0.0.1", "c@acme.io")
        assert isinstance(limited, Refusal) and limited.reason == "address_limited"
        assert 1 <= limited.retry_after <= 60
        assert throttle.unlock("a@acme.io")  # the lock, and the doubling with it
        again = throttle.admit("10.0.0.3", "a@acme.io")
        assert isinstance(again, Attempt) and throttle.failed(again) is None
        # A success forgets nothing: the failure above stays counted, so two more lock it.
        assert throttle.succeeded(throttle.admit("10.0.0.4", "a@acme.io")) is None  # type: ignore[arg-type]
        verdicts = [throttle.failed(throttle.admit("10.0.0.4", "a@acme.io")) for _ in range(2)]  # type: ignore[arg-type]
        assert verdicts == [None, Refusal("account_locked", 60, True, 1)]


# -- 3. the client address -----------------------------------------------------------------


def _from(http: httpx.Client, client: str, n: int = 0) -> int:
    headers = {"X-Forwarded-For": client}
    body = {"email": f"user{n}@acme.io", "password": "not-the-password"}
    return http.post("/v1/auth/login", json=body, headers=headers).status_code


@pytest.mark.slow
def test_behind_the_load_balancer_each_client_has_its_own_address_limit(
    migrated: Database, redis_url: str, live_api: Any
) -> None:
    base = {
        "DATABASE_URL": migrated.url(),
        "JWT_SECRET": JWT,
        "REDIS_URL": redis_url,
        "ECOMIND_LOGIN_FAILURES_PER_ADDRESS": "2/minute",
        "ECOMIND_LOGIN_FAILURES_PER_ACCOUNT": "100/minute",
    }
    # The balancer is this test (127.0.0.1), inside FORWARDED_ALLOW_IPS as the deployment sets it.
    api = live_api({**base, "FORWARDED_ALLOW_IPS": "127.0.0.0/8"}, shipped_flags())
    with api.client() as http:
        assert [_from(http, "203.0.113.1", n) for n in range(3)] == [401, 401, 429]
        assert _from(http, "203.0.113.2") == 401  # another client behind the same balancer
        # A client cannot pick its address: the balancer appends the peer it saw, and that counts.
        assert _from(http, "203.0.113.99, 203.0.113.1") == 429
    addresses = {a for (a,) in sql(migrated, "SELECT detail->>'address' FROM audit_events")}
    assert addresses == {"203.0.113.1", "203.0.113.2"}
    # A peer outside FORWARDED_ALLOW_IPS (here 10.0.0.0/16) is not the balancer:
    # its X-Forwarded-For is ignored, so the limit counts the peer.
    sql(migrated, "DELETE FROM audit_events")
    with redis.Redis.from_url(redis_url) as r:
        r.flushall()
    api = live_api({**base, "FORWARDED_ALLOW_IPS": "10.0.0.0/16"}, shipped_flags())
    with api.client() as http:
        assert [_from(http, f"203.0.113.{n}", n) for n in range(1, 4)] == [401, 401, 429]
    assert {a for (a,) in sql(migrated, "SELECT detail->>'address' FROM audit_events")} == {"127.0.0.1"}


@pytest.mark.slow
def test_ecomind_dev_counts_the_peer_not_x_forwarded_for(migrated: Database, redis_url: str, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"DATABASE_URL={migrated.url()}\nJWT_SECRET={JWT}\nREDIS_URL={redis_url}\n")
    port = free_port()
    env = child_env()
    env.update(ECOMIND_LOGIN_FAILURES_PER_ADDRESS="2/minute", ECOMIND_METRICS_PORT="0")
    proc = subprocess.Popen(
        [ECOMIND, "dev", "--port", str(port), "--data-dir", str(tmp_path / ".data")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: still_running(proc) and port_open("127.0.0.1", port), 120, "ecomind dev serving")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            # Every "client" below is this one local process: one address, one limit.
            assert [_from(http, f"203.0.113.{n}", n) for n in range(1, 4)] == [401, 401, 429]
    finally:
        terminate(proc)  # type: ignore[arg-type]


# -- 5. a PostgreSQL that hangs ------------------------------------------------------------


def _server_processes(pg: LocalPostgres) -> list[int]:
    """The postmaster and its children (backends, checkpointer...)."""
    postmaster = int((pg.data / "postmaster.pid").read_text().split()[0])
    children = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        if stat and int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
            children.append(int(entry.name))
    return [postmaster, *children]


@contextlib.contextmanager
def _postgresql_to_freeze() -> Iterator[tuple[LocalPostgres, str, list[int]]]:
    """A PostgreSQL of the test's own, migrated, with an owner; the test freezes it by putting
    the pids of :func:`_server_processes` in the list, and they are resumed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="ecomind-pg-frozen-"))  # the postgres user must reach it
    pg = LocalPostgres(root, free_port()).start()
    frozen: list[int] = []
    try:
        ensure_role_and_database(pg.superuser_dsn(), user="frozen", password=f"{CANARY}-f", dbname="frozen")
        # The connections queued while frozen are accepted when it resumes; their clients are gone,
        # and without this each would hold the server's shutdown for a minute.
        with psycopg.connect(pg.superuser_dsn(), autocommit=True) as admin:
            admin.execute("ALTER SYSTEM SET authentication_timeout = '2s'")
            admin.execute("SELECT pg_reload_conf()")
        url = f"postgresql://frozen:{CANARY}-f@127.0.0.1:{pg.port}/frozen"
        assert migrate(url).returncode == 0
        create_owner(url, "Acme", "owner@acme.io")
        yield pg, url, frozen
    finally:
        for pid in reversed(frozen):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


def _freeze(pg: LocalPostgres, frozen: list[int]) -> None:
    frozen += _server_processes(pg)
    for pid in frozen:  # the whole server: postmaster and the backends of the pool
        os.kill(pid, signal.SIGSTOP)


@pytest.mark.slow
def test_a_frozen_postgresql_is_503_within_a_bound_and_health_answers_at_once(
    private_redis: LocalRedis, live_api: Any
) -> None:
    with _postgresql_to_freeze() as (pg, url, frozen):
        api = live_api(
            {
                "DATABASE_URL": url,
                "JWT_SECRET": JWT,
                "REDIS_URL": f"redis://127.0.0.1:{private_redis.port}/0",
                "ECOMIND_DB_CONNECT_TIMEOUT": "4",
                "ECOMIND_DB_STATEMENT_TIMEOUT": "1",
                "ECOMIND_DB_POOL_TIMEOUT": "4",
                "ECOMIND_USER_CACHE_SECONDS": "300",
            }
        )
        with httpx.Client(base_url=api.url, timeout=30) as http:
            token = login(http, "owner@acme.io")  # type: ignore[arg-type]
            assert http.get("/v1/events/summary", headers=bearer(token)).status_code == 200
            _freeze(pg, frozen)

            def summary(_: int) -> tuple[int, float, str | None]:
                with httpx.Client(base_url=api.url, timeout=30) as own:
                    started = time.monotonic()
                    response = own.get("/v1/events/summary", headers=bearer(token))
                    return response.status_code, time.monotonic() - started, response.headers.get("Retry-After")

            # More requests at once than the server's 40 request threads.
            with ThreadPoolExecutor(45) as pool:
                answers = pool.map(summary, range(45))
                time.sleep(1.5)  # every request thread waits on the database by now
                started = time.monotonic()
                health = http.get("/health")
                health_seconds = time.monotonic() - started
                results = list(answers)
        assert health.status_code == 200 and health_seconds < 1, health_seconds
        assert {(status, retry) for status, _, retry in results} == {(503, "5")}, results
        # The slowest: the pooled connection's check waits 4 s (the connect timeout), then a new
        # connection 4 s; beyond the 40 threads, a request waits for one, then for the pool (4 s).
        assert max(seconds for _, seconds, _ in results) < 20, results


@pytest.mark.slow
def test_with_the_default_timeouts_a_frozen_postgresql_is_503_within_the_documented_20_s(
    private_redis: LocalRedis, live_api: Any
) -> None:
    with _postgresql_to_freeze() as (pg, url, frozen):
        # The shipped timeouts (docs/security.md): connect 5 s, statement 15 s, pool 10 s.
        env = {"DATABASE_URL": url, "JWT_SECRET": JWT, "REDIS_URL": f"redis://127.0.0.1:{private_redis.port}/0"}
        api = live_api({**env, "ECOMIND_USER_CACHE_SECONDS": "300"})
        with httpx.Client(base_url=api.url, timeout=60) as http:
            token = login(http, "owner@acme.io")  # type: ignore[arg-type]
            assert http.get("/v1/events/summary", headers=bearer(token)).status_code == 200  # a pooled connection
            _freeze(pg, frozen)
            started = time.monotonic()
            response = http.get("/v1/events/summary", headers=bearer(token))
            seconds = time.monotonic() - started
        assert (response.status_code, response.headers.get("Retry-After")) == (503, "5"), response.text
        assert seconds < 20, f"a frozen PostgreSQL held a request {seconds:.1f} s; docs/security.md says 20 s at most"


# -- 6. AWSPREVIOUS after a blip ------------------------------------------------------------


def test_after_a_secrets_manager_blip_tokens_of_the_previous_key_verify_again(aws: Aws, proxy: AwsProxy) -> None:
    aws.create("blip/jwt", JWT)
    env = {**aws.env, "DATABASE_URL": "postgresql://u:p@127.0.0.1/db", "JWT_SECRET": "aws-secretsmanager:blip/jwt"}
    settings = opened(load_settings(env, env_file=None))
    tokens = TokenService(settings)
    old, _ = tokens.issue(subject=str(uuid.uuid4()), org_id=str(uuid.uuid4()), role="OWNER")
    assert tokens.verify(old)["role"] == "OWNER"  # no rotation yet: no AWSPREVIOUS
    aws.client.put_secret_value(SecretId="blip/jwt", SecretString="rotated-jwt-secret-" + "z" * 40)
    settings.secret("JWT_SECRET").refresh()  # this replica sees the rotation...
    proxy.outage_mode, proxy.down_regions = "5xx", {REGION}  # ...and Secrets Manager blips
    with pytest.raises(InvalidToken):
        tokens.verify(old)  # AWSPREVIOUS cannot be read now: refused, for now
    proxy.down_regions = set()

    def verifies() -> bool:
        try:
            return bool(tokens.verify(old)["role"] == "OWNER")  # read again once Secrets Manager answers
        except InvalidToken:
            return False

    wait_until(verifies, 20, "tokens of the previous key verifying once Secrets Manager is back", 0.5)


# -- 7. strict claims ----------------------------------------------------------------------


@pytest.mark.slow
def test_signed_tokens_with_claims_we_never_sign_are_401_never_500(migrated: Database, redis_url: str) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    with client({"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT, "REDIS_URL": redis_url}) as api:
        token = login(api, "owner@acme.io")
        claims = pyjwt.decode(token, options={"verify_signature": False})
        kid = pyjwt.get_unverified_header(token)["kid"]
        iat = claims["iat"]

        def signed(**changes: Any) -> str:
            body = {k: v for k, v in {**claims, **changes, "jti": uuid.uuid4().hex}.items() if v is not None}
            return pyjwt.encode(body, JWT, algorithm="HS256", headers={"kid": kid})

        assert api.get("/v1/auth/me", headers=bearer(signed())).status_code == 200  # the control
        forged = {
            "exp as a string": signed(exp=str(claims["exp"])),
            "exp as a float": signed(exp=claims["exp"] + 0.5),
            "exp true": signed(exp=True),
            "exp in 10^30": signed(exp=10**30),
            "exp in 10^15": signed(exp=10**15),
            "exp past the lifetime": signed(exp=iat + 60 * 60 + 3600),
            "exp before iat": signed(iat=iat - 10, exp=iat - 20),
            "iat as a string": signed(iat=str(iat)),
            "no iat": signed(iat=None),
            "an extra claim": signed(admin=True),
            "nbf too": signed(nbf=iat),
        }
        for name, bad in forged.items():
            for method, path in (("GET", "/v1/auth/me"), ("POST", "/v1/auth/logout"), ("GET", "/v1/events/summary")):
                response = api.request(method, path, headers=bearer(bad))
                assert response.status_code == 401, (name, path, response.status_code, response.text)


# -- 4. login time and the number of memberships ----------------------------------------


def _salts(db: Database, email: str) -> set[str]:
    rows = sql(db, "SELECT password_hash FROM users WHERE email = %s", email)
    return {h.rsplit("$", 2)[1] for (h,) in rows}


@pytest.mark.slow
def test_a_login_costs_one_argon2_computation_whatever_the_number_of_organisations(
    migrated: Database, redis_url: str
) -> None:
    for n in range(3):  # create-admin: the email in three organisations, a password each
        create_owner(migrated.url(), f"Org{n}", "multi@acme.io", password=f"multi-password-{n}-xyz")
    create_owner(migrated.url(), "Org3", "boss@org3.io")
    create_owner(migrated.url(), "Solo", "single@acme.io")
    tuning = Tuning(login_failures_per_account="1000/minute", login_failures_per_address="1000/minute")
    with client({"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT, "REDIS_URL": redis_url}, tuning) as api:
        boss = login(api, "boss@org3.io")
        body = {"email": "multi@acme.io", "password": "multi-password-3-xyz", "role": "VIEWER"}
        assert api.post("/v1/users", json=body, headers=bearer(boss)).status_code == 201  # and the API: a fourth
        assert len(_salts(migrated, "multi@acme.io")) == 1  # one salt for the email's four memberships
        for n in range(4):  # each membership still has its own password
            token = login(api, "multi@acme.io", f"multi-password-{n}-xyz")
            assert pyjwt.decode(token, options={"verify_signature": False})["org"] == str(org_of(migrated, f"Org{n}"))

        hashing = api.app.state.services.hashing  # type: ignore[attr-defined]

        def computations(email: str) -> int:
            before = hashing.checks_computed
            assert attempt(api, email).status_code == 401
            return int(hashing.checks_computed - before)

        # Four memberships cost one argon2 computation, like one membership and like none: the
        # time a wrong password takes does not tell how many organisations hold the email.
        spent = {email: computations(email) for email in ("multi@acme.io", "single@acme.io", "nobody@acme.io")}
    assert spent == {"multi@acme.io": 1, "single@acme.io": 1, "nobody@acme.io": 1}, spent


@pytest.mark.slow
def test_a_membership_with_a_salt_of_its_own_joins_the_shared_one_at_its_next_login(migrated: Database) -> None:
    create_owner(migrated.url(), "Org0", "multi@acme.io", password="multi-password-0-xyz")
    create_owner(migrated.url(), "Org1", "multi@acme.io", password="multi-password-1-xyz")
    # A membership hashed before salts were shared: a salt of its own.
    own = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1).hash("multi-password-1-xyz")
    sql(migrated, "UPDATE users SET password_hash = %s WHERE org_id = %s", own, org_of(migrated, "Org1"))
    assert len(_salts(migrated, "multi@acme.io")) == 2
    with client({"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT}) as api:
        login(api, "multi@acme.io", "multi-password-1-xyz")
        assert len(_salts(migrated, "multi@acme.io")) == 1
        login(api, "multi@acme.io", "multi-password-1-xyz")  # and the new hash verifies
        login(api, "multi@acme.io", "multi-password-0-xyz")


# -- 11. lifting a lockout; 12. an organisation named in another case ------------------------


@pytest.mark.slow
def test_users_unlock_lifts_a_lockout_on_every_replica(migrated: Database, private_redis: LocalRedis, cli: Cli) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    redis_url = f"redis://127.0.0.1:{private_redis.port}/0"
    env = {"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT, "REDIS_URL": redis_url}
    tuning = Tuning(login_failures_per_account="3/15 minutes", lockout_seconds=600)
    with client(env, tuning) as api, client(env, tuning) as replica:
        assert [attempt(api, "owner@acme.io").status_code for _ in range(3)] == [401, 401, 429]
        assert attempt(replica, "owner@acme.io", OWNER_PASSWORD).status_code == 429
        done = cli("users", "unlock", "--email", "Owner@Acme.io", env={"REDIS_URL": redis_url})
        assert done.returncode == 0 and done.stdout == "unlocked owner@acme.io\n", done.stderr
        assert_clean(done)
        assert attempt(replica, "owner@acme.io", OWNER_PASSWORD).status_code == 200
        again = cli("users", "unlock", "--email", "owner@acme.io", env={"REDIS_URL": redis_url})
        assert again.returncode == 0 and "was not locked" in again.stdout
        # An address in another spelling (an IDN domain in ASCII) is counted, and unlocked, as the API
        # normalises it.
        assert [attempt(api, "ops@xn--bcher-kva.de").status_code for _ in range(3)] == [401, 401, 429]
        idn = cli("users", "unlock", "--email", "ops@xn--bcher-kva.de", env={"REDIS_URL": redis_url})
        assert idn.returncode == 0 and idn.stdout == "unlocked ops@bücher.de\n", idn.stdout + idn.stderr
        assert attempt(api, "ops@xn--bcher-kva.de").status_code == 401
    unset = cli("users", "unlock", "--email", "owner@acme.io")
    assert unset.returncode == 3 and "REDIS_URL is not set" in unset.stderr
    private_redis.stop()
    with_password = f"redis://:{CANARY}@127.0.0.1:{private_redis.port}/0"
    down = cli("users", "unlock", "--email", "owner@acme.io", env={"REDIS_URL": with_password})
    assert down.returncode == 1 and "REDIS_URL" in down.stderr and "ecomind doctor" in down.stderr
    assert_clean(down)  # the URL's password is nowhere in what it printed


@pytest.mark.slow
def test_create_admin_names_an_organisation_in_any_case(migrated: Database) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    create_owner(migrated.url(), "acme ", "second@acme.io")
    assert sql(migrated, "SELECT name FROM orgs") == [("Acme",)]
    assert len(sql(migrated, "SELECT 1 FROM users WHERE org_id = %s", org_of(migrated, "Acme"))) == 2
