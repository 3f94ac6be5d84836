"""The API under a flood of requests: database connections, request threads and what answers 503.

Real uvicorn (or the app in-process), real PostgreSQL with password auth, real Redis, loopback
only; every flood is bounded in count and time, and nothing here is timed.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from argon2 import PasswordHasher

from app.settings.knobs import Tuning

from ..conftest import Database
from .helpers import JWT, OWNER_PASSWORD, bearer, client, create_owner, login
from .test_abuse import sql
from .test_observability import sample, scrape

UNAVAILABLE = "the database is unavailable; try again shortly"


def test_a_flood_of_authenticated_reads_never_waits_for_a_connection_and_ready_still_answers(
    migrated: Database, redis_url: str, live_api: Any
) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    # A pool wait of 50 ms would time out at once were any request thread ever to wait for a
    # connection: every request thread must find one free, however many requests arrive.
    api = live_api(
        {"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT, "REDIS_URL": redis_url, "ECOMIND_DB_POOL_TIMEOUT": "0.05"}
    )
    with api.client() as http:
        token = login(http, "owner@acme.io")  # type: ignore[arg-type]
    start = threading.Barrier(81)
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)

    def read(i: int) -> httpx.Response:
        with api.client(limits=limits) as own:
            start.wait(60)
            path = "/v1/events/summary" if i % 2 else "/v1/auth/me"
            return own.get(path, headers=bearer(token))

    def ready() -> list[int]:
        with api.client() as own:
            start.wait(60)
            return [own.get("/ready").status_code for _ in range(5)]

    with ThreadPoolExecutor(81) as pool:
        probes = pool.submit(ready)
        answers = list(pool.map(read, range(80)))
    codes = [r.status_code for r in answers]
    assert not [r.text for r in answers if r.status_code == 503], "503 while PostgreSQL is healthy"
    assert codes == [200] * 80
    assert probes.result() == [200] * 5


def test_a_pool_that_stays_busy_is_answered_as_overload_not_as_a_database_outage(migrated: Database) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    env = {"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT}
    tuning = Tuning(db_pool_timeout=0.2, user_cache_seconds=0, metrics_port=0)
    app_client = client(env, tuning)
    with app_client as api:
        token = login(api, "owner@acme.io")
        engine = api.app.state.services.sessions.kw["bind"]  # type: ignore[attr-defined]
        # Every connection the pool may open, held here: the request's wait for one times out.
        held = [engine.connect() for _ in range(engine.pool.size() + engine.pool._max_overflow)]
        try:
            busy = api.get("/v1/events/summary", headers=bearer(token))
        finally:
            for connection in held:
                connection.close()
        assert busy.status_code == 503, busy.text
        assert busy.json()["detail"] != UNAVAILABLE and "overloaded" in busy.json()["detail"]
        assert busy.headers["Retry-After"] == "1"
        text = scrape(api)
        assert sample(text, "ecomind_database_pool_exhausted_total") == 1
        assert sample(text, "ecomind_database_unavailable_total") == 0
        assert api.get("/v1/events/summary", headers=bearer(token)).status_code == 200


def test_a_flood_of_correct_logins_of_one_account_is_answered_at_once_and_never_locks_it(
    migrated: Database, redis_url: str, live_api: Any
) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    # A stored hash that takes about a second to check: the logins admitted stay in flight
    # while the others arrive. Logged in once, it is rehashed with the current parameters.
    slow = PasswordHasher(time_cost=60, memory_cost=19456, parallelism=1).hash(OWNER_PASSWORD)
    sql(migrated, "UPDATE users SET password_hash = %s", slow)
    api = live_api(
        {
            "DATABASE_URL": migrated.url(),
            "JWT_SECRET": JWT,
            "REDIS_URL": redis_url,
            "ECOMIND_LOGIN_FAILURES_PER_ACCOUNT": "5/15 minutes",
            "ECOMIND_HASH_WORKERS": "1",
        }
    )
    right = {"email": "owner@acme.io", "password": OWNER_PASSWORD}
    start = threading.Barrier(12)
    finished: list[int] = []  # status codes in the order the answers came

    def log_in(_: int) -> httpx.Response:
        with api.client() as own:
            start.wait(60)
            response = own.post("/v1/auth/login", json=right)
            finished.append(response.status_code)
            return response

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(log_in, range(12)))
    codes = [r.status_code for r in answers]
    assert set(codes) <= {200, 429} and 200 in codes, codes
    for refused in (r for r in answers if r.status_code == 429):
        # Logins still being checked fill the account's window: a limit on checks in flight,
        # never a lockout.
        assert refused.headers["Retry-After"] == "1"
        assert "locked" not in refused.json()["detail"], refused.text
    # Answered at once, not after waiting in a request thread for a slot: every refusal came
    # before the first login whose password was checked.
    assert finished == sorted(finished, reverse=True), finished
    lockouts = "SELECT count(*) FROM audit_events WHERE action IN ('auth.lockout', 'auth.login_failed')"
    assert sql(migrated, lockouts) == [(0,)]
    refused_rows = sql(migrated, "SELECT detail->>'reason' FROM audit_events WHERE action = 'auth.login_refused'")
    assert ("account_locked",) not in refused_rows
    with api.client() as http:  # not locked: the right password logs in
        assert http.post("/v1/auth/login", json=right).status_code == 200


def test_creating_a_user_whose_email_exists_in_the_organisation_is_409_without_hashing_its_password(
    migrated: Database,
) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    tuning = Tuning(hash_workers=1, hash_queue=0, metrics_port=0)
    body = {"email": "taken@acme.io", "password": "a-good-pass-phrase-7", "role": "VIEWER"}
    with client({"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT}, tuning) as api:
        token = login(api, "owner@acme.io")
        assert api.post("/v1/users", json=body, headers=bearer(token)).status_code == 201
        # The one hashing worker is taken, and no caller may wait: any hash would be a 503.
        hashing = api.app.state.services.hashing  # type: ignore[attr-defined]
        release, running = threading.Event(), threading.Event()
        holder = threading.Thread(target=hashing._run, args=(lambda: (running.set(), release.wait(30)),))
        holder.start()
        try:
            assert running.wait(30)
            again = api.post("/v1/users", json={**body, "email": "Taken@acme.io"}, headers=bearer(token))
            new = api.post("/v1/users", json={**body, "email": "new@acme.io"}, headers=bearer(token))
        finally:
            release.set()
            holder.join(30)
        assert again.status_code == 409, again.text  # answered before any argon2 computation
        assert new.status_code == 503  # a new email's password is hashed: the worker was needed
        assert api.post("/v1/users", json={**body, "email": "new@acme.io"}, headers=bearer(token)).status_code == 201
    users = "SELECT count(*) FROM users WHERE email IN ('taken@acme.io', 'new@acme.io')"
    assert sql(migrated, users) == [(2,)]


def test_right_passwords_from_one_address_never_limit_it_and_others_failures_do(
    migrated: Database, redis_url: str, live_api: Any
) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    slow = PasswordHasher(time_cost=60, memory_cost=19456, parallelism=1).hash(OWNER_PASSWORD)
    sql(migrated, "UPDATE users SET password_hash = %s", slow)  # logins stay in flight a while
    api = live_api(
        {
            "DATABASE_URL": migrated.url(),
            "JWT_SECRET": JWT,
            "REDIS_URL": redis_url,
            "ECOMIND_LOGIN_FAILURES_PER_ADDRESS": "3/10 minutes",
            "ECOMIND_LOGIN_FAILURES_PER_ACCOUNT": "1000/minute",
            "ECOMIND_HASH_WORKERS": "1",
        }
    )
    right = {"email": "owner@acme.io", "password": OWNER_PASSWORD}
    start = threading.Barrier(8)

    def log_in(_: int) -> httpx.Response:
        with api.client() as own:
            start.wait(60)
            return own.post("/v1/auth/login", json=right)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(log_in, range(8)))
    assert {r.status_code for r in answers} <= {200, 429} and 200 in {r.status_code for r in answers}
    for refused in (r for r in answers if r.status_code == 429):
        # Three logins in flight fill the address's window: the others are asked to retry in a
        # second; the address is not limited, nothing is written.
        assert refused.headers["Retry-After"] == "1" and "from this address" in refused.text, refused.text
        assert "failed" not in refused.text
    assert sql(migrated, "SELECT count(*) FROM audit_events WHERE action = 'auth.login_refused'") == [(0,)]
    with api.client() as http:
        assert http.post("/v1/auth/login", json=right).status_code == 200  # eight right: no count
        for n in range(3):  # someone else behind the address fails three times...
            assert http.post("/v1/auth/login", json={**right, "email": f"x{n}@acme.io"}).status_code == 401
        limited = http.post("/v1/auth/login", json=right)  # ...and the right password waits its window
        assert limited.status_code == 429 and "failed logins from this address" in limited.text
        assert int(limited.headers["Retry-After"]) > 500


def test_ready_answers_while_every_request_thread_waits_on_the_database(
    migrated: Database, redis_url: str, live_api: Any
) -> None:
    import psycopg

    create_owner(migrated.url(), "Acme", "owner@acme.io")
    env = {"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT, "REDIS_URL": redis_url}
    api = live_api({**env, "ECOMIND_REQUEST_THREADS": "10", "ECOMIND_HASH_WORKERS": "1", "ECOMIND_HASH_QUEUE": "1"})
    with api.client() as http:
        token = login(http, "owner@acme.io")  # type: ignore[arg-type]
    blocked = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND usename = %s"
    with psycopg.connect(migrated.url()) as holder, ThreadPoolExecutor(20) as pool:
        holder.execute("LOCK TABLE usage_events IN ACCESS EXCLUSIVE MODE")  # every summary waits for it

        def summary(_: int) -> int:
            with api.client() as own:
                return own.get("/v1/events/summary", headers=bearer(token)).status_code

        answers = pool.map(summary, range(20))
        for _ in range(600):  # every request thread holds a summary waiting on the lock
            with psycopg.connect(migrated.url()) as watcher:
                if watcher.execute(blocked, (migrated.user,)).fetchone()[0] >= 10:  # type: ignore[index]
                    break
            threading.Event().wait(0.05)
        else:
            raise AssertionError("the request threads never all waited on the lock")
        ready = httpx.get(f"{api.url}/ready", timeout=10)  # the threads are all taken: /ready needs none
        assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok", ready.text
        holder.rollback()
        assert list(answers) == [200] * 20
