"""The API under abuse, each behaviour as a test on real PostgreSQL and Redis.

1. login limits, lockouts and their audit; bounded hashing; the request body limit
2. a logout survives a Redis restart
3. NUL and lone surrogates are 422
4. a race to create one email: one 201, the rest 409
5. PostgreSQL down: 503 with Retry-After everywhere
6. an email used in another organisation reveals nothing
7. password strength
8. tokens of deleted or disabled users, and malformed claims, are 401
"""

from __future__ import annotations

import json
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt
import psycopg
import pytest
import redis
from argon2 import PasswordHasher

from app.auth.hashing import HashingBusy, PasswordHashing
from app.auth.limits import Keys
from app.data.local import LocalPostgres, LocalRedis, ensure_role_and_database, port_open, terminate
from app.settings.knobs import Tuning

from ..conftest import CANARY, ECOMIND, Database, migrate
from ..support.environment import child_env
from ..support.polling import still_running, wait_until
from ..support.services import free_port
from .helpers import JWT, OWNER_PASSWORD, bearer, client, create_owner, login, shipped_flags

EVENT = {"kind": "inference", "energy_wh": "1", "co2e_g": "1"}


def audit(db: Database, action: str) -> list[dict[str, Any]]:
    with psycopg.connect(db.url()) as conn:
        rows = conn.execute("SELECT detail FROM audit_events WHERE action = %s ORDER BY id", (action,)).fetchall()
    return [r[0] for r in rows]


def sql(db: Database, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(db.url()) as conn:
        cursor = conn.execute(query, params)
        rows = cursor.fetchall() if cursor.description else []
        conn.commit()
    return rows


def wrong(api: Any, email: str) -> Any:
    return api.post("/v1/auth/login", json={"email": email, "password": "not-the-password"})


# -- 1. login limits -------------------------------------------------------------------


@pytest.mark.slow
def test_failed_logins_lock_the_account_with_a_growing_delay_all_audited(migrated: Database, redis_url: str) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    tuning = Tuning(login_failures_per_account="3/15 minutes", lockout_seconds=1)
    lock = Keys.of("testclient", "owner@acme.io").lock
    with (
        client({"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT, "REDIS_URL": redis_url}, tuning) as api,
        redis.Redis.from_url(redis_url) as shared,
    ):

        def lock_ran_out() -> bool:
            return not shared.exists(lock)

        assert [wrong(api, "owner@acme.io").status_code for _ in range(2)] == [401, 401]
        locked = wrong(api, "owner@acme.io")  # the third failure locks the account
        assert locked.status_code == 429 and locked.headers["Retry-After"] == "1"
        # Locked: even the right password is refused, and no password is checked.
        right = api.post("/v1/auth/login", json={"email": "owner@acme.io", "password": OWNER_PASSWORD})
        assert right.status_code == 429 and int(right.headers["Retry-After"]) >= 1
        wait_until(lock_ran_out, 10, "the one-second lockout running out")
        assert [wrong(api, "owner@acme.io").status_code for _ in range(2)] == [401, 401]
        second = wrong(api, "owner@acme.io")
        assert second.status_code == 429 and second.headers["Retry-After"] == "2"  # the delay doubled
        wait_until(lock_ran_out, 10, "the two-second lockout running out")
        login(api, "owner@acme.io")  # the lock ran out; a success forgets neither failures nor the doubling
        assert [wrong(api, "owner@acme.io").status_code for _ in range(3)] == [401, 401, 429]
        assert wrong(api, "owner@acme.io").headers["Retry-After"] == "4"
    failed = audit(migrated, "auth.login_failed")
    assert len(failed) == 9 and all(d["email"] == "owner@acme.io" and d["address"] for d in failed)
    lockouts = audit(migrated, "auth.lockout")
    assert [(d["level"], d["seconds"]) for d in lockouts] == [(1, 1), (2, 2), (3, 4)]
    refused = audit(migrated, "auth.login_refused")  # the 429 that started each lockout; not the ones after
    assert len(refused) == 3 and {d["reason"] for d in refused} == {"account_locked"}
    assert not any(CANARY in json.dumps(d) or OWNER_PASSWORD in json.dumps(d) for d in failed + refused)


@pytest.mark.slow
def test_unknown_emails_are_counted_and_locked_like_known_ones(migrated: Database, redis_url: str) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    tuning = Tuning(login_failures_per_account="3/15 minutes")
    with client({"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT, "REDIS_URL": redis_url}, tuning) as api:
        known = [wrong(api, "owner@acme.io") for _ in range(4)]
        unknown = [wrong(api, "nobody@acme.io") for _ in range(4)]
    assert [r.status_code for r in known] == [r.status_code for r in unknown] == [401, 401, 429, 429]
    assert [r.json() for r in known] == [r.json() for r in unknown]
    assert [r.headers.get("Retry-After") for r in known] == [r.headers.get("Retry-After") for r in unknown]


@pytest.mark.slow
def test_failures_from_one_address_are_limited_across_accounts(migrated: Database, redis_url: str) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    tuning = Tuning(login_failures_per_address="4/minute", login_failures_per_account="100/minute")
    env = {"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT, "REDIS_URL": redis_url}
    with client(env, tuning) as api:
        for _ in range(3):
            login(api, "owner@acme.io")  # successes from an address never count against it
        assert [wrong(api, f"user{n}@acme.io").status_code for n in range(4)] == [401] * 4
        refused = api.post("/v1/auth/login", json={"email": "owner@acme.io", "password": OWNER_PASSWORD})
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # Another replica shares the count through Redis.
    with client(env, tuning) as replica:
        assert wrong(replica, "someone@acme.io").status_code == 429
    reasons = [d["reason"] for d in audit(migrated, "auth.login_refused")]
    assert reasons == ["address_limited"]  # one row per limited period, whichever replica refused


@pytest.mark.slow
def test_an_ipv6_client_is_limited_per_64_and_an_ipv4_mapped_one_as_its_ipv4_address(
    migrated: Database, redis_url: str, live_api: Any
) -> None:
    env = {
        "DATABASE_URL": migrated.url(),
        "JWT_SECRET": JWT,
        "REDIS_URL": redis_url,
        "ECOMIND_LOGIN_FAILURES_PER_ADDRESS": "3/minute",
        "ECOMIND_LOGIN_FAILURES_PER_ACCOUNT": "100/minute",
        # This test is the load balancer: X-Forwarded-For names the client, as behind an ALB.
        "FORWARDED_ALLOW_IPS": "127.0.0.0/8",
    }
    api = live_api(env, ["--proxy-headers"])

    def from_(http: Any, client: str, n: int) -> int:
        body = {"email": f"user{n}@acme.io", "password": "not-the-password"}
        return int(http.post("/v1/auth/login", json=body, headers={"X-Forwarded-For": client}).status_code)

    with api.client() as http:
        # One host, a new address of its /64 for every guess: one window all the same.
        same_64 = ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:abcd:ef01:2345:6789", "2001:db8:1:2::4"]
        assert [from_(http, a, n) for n, a in enumerate(same_64)] == [401, 401, 401, 429]
        assert from_(http, "2001:db8:1:3::1", 10) == 401  # the next /64 is another client
        # An IPv4 client, as itself and as a dual-stack socket reports it: one window.
        ipv4 = ["203.0.113.7", "::ffff:203.0.113.7", "::ffff:cb00:7107", "203.0.113.7"]
        assert [from_(http, a, 20 + n) for n, a in enumerate(ipv4)] == [401, 401, 401, 429]
        assert from_(http, "203.0.113.8", 30) == 401  # IPv4 stays per address
    # The audit keeps the address each login came from.
    addresses = {d["address"] for d in audit(migrated, "auth.login_failed")}
    assert {"2001:db8:1:2::1", "2001:db8:1:2::2", "203.0.113.7"} <= addresses


def test_login_limits_hold_per_process_while_redis_is_down(migrated: Database, private_redis: LocalRedis) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    tuning = Tuning(login_failures_per_account="3/15 minutes")
    env = {"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT, "REDIS_URL": f"redis://127.0.0.1:{private_redis.port}/0"}
    with client(env, tuning) as api:
        private_redis.stop()
        token = login(api, "owner@acme.io")  # logins keep working
        assert [wrong(api, "owner@acme.io").status_code for _ in range(3)] == [401, 401, 429]
        assert api.get("/v1/auth/me", headers=bearer(token)).status_code == 200
    assert all(d["degraded_limits"] for d in audit(migrated, "auth.login_failed"))


def test_password_hashing_is_bounded_and_refuses_beyond_its_queue() -> None:
    hashing = PasswordHashing(workers=1, queue=0)
    release, running = threading.Event(), threading.Event()
    names: list[str] = []

    def occupy() -> None:
        names.append(threading.current_thread().name)
        running.set()
        release.wait(30)

    holder = threading.Thread(target=hashing._run, args=(occupy,))
    holder.start()
    try:
        assert running.wait(30)
        with pytest.raises(HashingBusy):
            hashing.verify("$argon2id$not-checked", "x")  # the one slot is taken: refused at once
    finally:
        release.set()
        holder.join(30)
    digest = hashing.hash("a-password-for-the-pool")
    assert hashing.verify(digest, "a-password-for-the-pool")
    assert names[0].startswith("argon2")  # argon2 runs on the pool's own threads
    assert digest.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    hashing.close()


@pytest.mark.slow
def test_parallel_logins_beyond_the_hashing_queue_get_503_never_500(migrated: Database, live_api: Any) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    api = live_api(
        {
            "DATABASE_URL": migrated.url(),
            "JWT_SECRET": JWT,
            "ECOMIND_HASH_WORKERS": "1",
            "ECOMIND_HASH_QUEUE": "0",
            "ECOMIND_LOGIN_FAILURES_PER_ADDRESS": "1000/minute",
            "ECOMIND_LOGIN_FAILURES_PER_ACCOUNT": "1000/minute",
        }
    )
    with api.client() as http, ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(lambda _: wrong(http, "owner@acme.io"), range(48)))
    codes = {r.status_code for r in statuses}
    assert codes <= {401, 503} and 401 in codes
    assert all(r.headers["Retry-After"] == "1" for r in statuses if r.status_code == 503)


@pytest.mark.slow
def test_a_login_rehashes_a_password_stored_with_old_parameters(migrated: Database) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    old = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4).hash(OWNER_PASSWORD)  # argon2-cffi's default
    sql(migrated, "UPDATE users SET password_hash = %s WHERE email = 'owner@acme.io'", old)
    with client({"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT}) as api:
        login(api, "owner@acme.io")
        [(stored,)] = sql(migrated, "SELECT password_hash FROM users WHERE email = 'owner@acme.io'")
        assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$") and stored != old
        login(api, "owner@acme.io")  # the new hash verifies
        [(again,)] = sql(migrated, "SELECT password_hash FROM users WHERE email = 'owner@acme.io'")
        assert again == stored  # and is not rehashed again


def _raw(port: int, head: bytes, body_chunks: int = 0) -> tuple[bytes, int]:
    """Send ``head``, then 64 KiB chunks until the server answers (at most ``body_chunks``).

    Returns the start of the answer and the body bytes sent. The answer is read as soon
    as it arrives: the server closes without reading the rest, and a reset would drop it.
    """
    sent = 0
    chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        answer = b""
        for _ in range(body_chunks):
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(chunk)
            except OSError:
                break
            sent += 0x10000
        try:
            while b"\r\n\r\n" not in answer:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except OSError:
            pass
    return answer, sent


@pytest.mark.slow
def test_request_bodies_over_the_limit_are_refused_before_being_read(
    migrated: Database, redis_url: str, live_api: Any
) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    api = live_api({"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT, "REDIS_URL": redis_url})
    with api.client() as http:
        token = login(http, "owner@acme.io")  # type: ignore[arg-type]
        # An honest client with a 2 MiB event: 413, with and without a token.
        big = {**EVENT, "model": "m" * (2 * 1024 * 1024)}
        assert http.post("/v1/events", json=big, headers=bearer(token)).status_code == 413
        assert http.post("/v1/events", json=big).status_code == 413
        assert (
            http.post("/v1/auth/login", json={"email": "a@b.io", "password": "p" * (2 * 1024 * 1024)}).status_code
            == 413
        )
        # Just under the limit is read and judged on its content.
        fits = {**EVENT, "model": "m" * (1024 * 1024 - 200)}
        assert http.post("/v1/events", json=fits, headers=bearer(token)).status_code == 422
    # 100 MB announced: answered 413 from the headers alone, nothing of the body sent.
    for path in ("/v1/auth/login", "/v1/events", "/health"):
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\n\r\n"
        answer, _ = _raw(api.port, head.encode())
        assert answer.startswith(b"HTTP/1.1 413"), (path, answer[:200])
    # Chunked, no length announced: refused once 1 MiB has arrived, long before 100 MB.
    head = "POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += "Transfer-Encoding: chunked\r\n\r\n"
    answer, sent = _raw(api.port, head.encode(), body_chunks=1600)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 16 * 1024 * 1024


@pytest.mark.slow
def test_a_body_over_the_limit_is_logged_as_a_413_not_as_an_error(migrated: Database, live_api: Any) -> None:
    api = live_api({"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT})
    big = {**EVENT, "model": "m" * (2 * 1024 * 1024)}
    with api.client() as http:
        for path in ("/v1/auth/login", "/v1/events", "/v1/users"):
            assert http.post(path, json=big).status_code == 413, path  # Content-Length announced
    for path in ("/health", "/v1/events"):  # announced, and not one byte of the body sent
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\n\r\n"
        answer, _ = _raw(api.port, head.encode())
        assert answer.startswith(b"HTTP/1.1 413"), (path, answer[:200])
    wait_until(lambda: api.output().count('" 413') >= 5, 10, "five access lines of a 413")
    output = api.output()
    assert output.count('" 413') == 5, output  # each one's access line says what it was
    for alarm in ("ERROR", "Traceback", "unhandled error", " 500"):
        assert alarm not in output, output


@pytest.mark.slow
def test_connections_that_never_finish_their_headers_are_closed_and_health_still_answers(
    migrated: Database, live_api: Any
) -> None:
    timeout, cap, opened = 2, 50, 300
    env = {"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT}
    # The image's command and flags, with a small cap and a short deadline for the test.
    api = live_api(
        {**env, "ECOMIND_HEADER_TIMEOUT": str(timeout), "ECOMIND_MAX_CONNECTIONS": str(cap)}, shipped_flags()
    )
    half_open: list[socket.socket] = []
    try:
        started = time.monotonic()
        for _ in range(opened):  # each sends most of a request, and never the blank line that ends it
            sock = socket.create_connection(("127.0.0.1", api.port), timeout=5)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            half_open.append(sock)
        # A real client gets in at once: the oldest half-open connections made room.
        with httpx.Client(base_url=api.url, timeout=timeout) as http:
            asked = time.monotonic()
            assert http.get("/health").status_code == 200
            assert time.monotonic() - asked < 1
        # Every half-open one is closed by the deadline (or made room before it): nothing was answered.
        for sock in half_open:
            sock.settimeout(max(0.1, started + timeout + 3 - time.monotonic()))
            try:
                assert sock.recv(1024) == b""
            except ConnectionResetError:
                pass
        assert time.monotonic() - started < timeout + 3
    finally:
        for sock in half_open:
            sock.close()
    # At most one line about the cap, however many connections it closed: a flood is no log flood.
    assert api.output().count("ECOMIND_MAX_CONNECTIONS") == 1, api.output()[-3000:]


def _slow_body(port: int, path: str = "/v1/auth/login") -> socket.socket:
    """A connection that sends a request's whole headers, announces a body of 1,000,000 bytes and
    sends one byte of it."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000000\r\n\r\n{".encode()
    )
    return sock


def _answer_or_close(sock: socket.socket, by: float) -> bytes:
    """What the server sends until it closes the connection (or ``by``, a monotonic time, passes)."""
    answer = b""
    try:
        while True:
            sock.settimeout(max(0.1, by - time.monotonic()))
            data = sock.recv(65536)
            if not data:
                return answer
            answer += data
    except ConnectionResetError:
        return answer
    except TimeoutError:
        return answer + b"<still open>"


@pytest.mark.slow
def test_a_request_whose_body_stalls_is_answered_408_and_closed(migrated: Database, live_api: Any) -> None:
    timeout = 2
    env = {"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT, "ECOMIND_BODY_TIMEOUT": str(timeout)}
    api = live_api(env, shipped_flags())
    with _slow_body(api.port) as silent, _slow_body(api.port) as trickling:
        started = time.monotonic()
        while time.monotonic() - started < timeout + 1:  # a byte now and then does not extend the deadline
            try:
                trickling.sendall(b" ")
            except OSError:
                break
            time.sleep(0.5)
        for sock in (silent, trickling):
            answer = _answer_or_close(sock, started + timeout + 3)
            assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer[:200]
            assert answer.endswith(b"did not arrive in time\n"), answer[-200:]
        assert time.monotonic() - started < timeout + 3
    with api.client() as http:
        assert http.get("/health").status_code == 200
    output = api.output()
    assert output.count('" 408') == 2, output[-3000:]
    for alarm in ("ERROR", "Traceback", " 500"):
        assert alarm not in output, output[-3000:]


@pytest.mark.slow
def test_at_the_cap_the_connection_stalled_longest_makes_room_for_a_new_one(migrated: Database, live_api: Any) -> None:
    cap, opened = 20, 40
    env = {"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT, "ECOMIND_MAX_CONNECTIONS": str(cap)}
    api = live_api(env, shipped_flags())
    slow = []
    try:
        for _ in range(opened):  # whole headers, then a body that never comes: each is busy in the app
            slow.append(_slow_body(api.port, "/v1/events"))
            time.sleep(0.01)  # in order: the first opened is the one stalled longest
        with httpx.Client(base_url=api.url, timeout=5) as http:
            asked = time.monotonic()
            assert http.get("/health").status_code == 200
            assert time.monotonic() - asked < 1
        # The first ones opened made room (each answered 408), the last ones are still open.
        first = _answer_or_close(slow[0], time.monotonic() + 3)
        assert first.startswith(b"HTTP/1.1 408"), first[:200]
        last = _answer_or_close(slow[-1], time.monotonic() + 0.5)
        assert last == b"<still open>", last[:200]
    finally:
        for sock in slow:
            sock.close()
    output = api.output()
    lines = [line for line in output.splitlines() if "ECOMIND_MAX_CONNECTIONS" in line]
    assert len(lines) == 1, output[-3000:]  # a flood is no log flood
    assert "closed the connection stalled longest" in lines[0] and "request's body" in lines[0], lines


def _kept_alive(port: int) -> socket.socket:
    """A connection that made one whole request, read its answer and stays open, idle."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = b""
    while not answer.endswith(b"}"):  # /health's body is one JSON object
        answer += sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    return sock


@pytest.mark.slow
def test_at_the_cap_an_idle_kept_alive_connection_makes_room_before_one_that_just_connected(
    migrated: Database, live_api: Any
) -> None:
    """Busy keep-alive clients are idle between their requests for a moment: the probe that has
    just connected, older than those moments, must not be the one closed to make room."""
    cap = 20
    env = {"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT, "ECOMIND_MAX_CONNECTIONS": str(cap)}
    api = live_api(env, shipped_flags())
    probe = socket.create_connection(("127.0.0.1", api.port), timeout=5)  # connected, request not sent yet
    idle = [_kept_alive(api.port) for _ in range(cap - 1)]  # each idle since after the probe connected
    try:
        newcomer = _kept_alive(api.port)  # over the cap: someone makes room
        probe.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = _answer_or_close(probe, time.monotonic() + 3)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        closed = [sock for sock in idle if _answer_or_close(sock, time.monotonic() + 0.2) != b"<still open>"]
        assert closed == [idle[0]], len(closed)  # the one idle longest, and only it
        newcomer.close()
    finally:
        probe.close()
        for sock in idle:
            sock.close()
    lines = [line for line in api.output().splitlines() if "ECOMIND_MAX_CONNECTIONS" in line]
    assert len(lines) == 1 and "its next request, idle" in lines[0], lines


@pytest.mark.slow
def test_a_request_to_upgrade_to_a_websocket_is_answered_as_plain_http(migrated: Database, live_api: Any) -> None:
    api = live_api({"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT}, shipped_flags())
    upgrade = (
        b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    for _ in range(20):
        answer, _ = _raw(api.port, upgrade)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]  # not 101 Switching Protocols
        assert b"upgrade" not in answer.lower(), answer[:400]
    output = api.output()
    assert output.count('"GET /health HTTP/1.1" 200') == 20, output[-3000:]
    for said in ("Unsupported upgrade", "WebSocket", "pip install"):  # no line per request, no advice to install
        assert said not in output, output[-3000:]


@pytest.mark.slow
def test_an_api_whose_redis_may_evict_revocations_says_so_at_start_with_the_fix(
    migrated: Database, private_redis: LocalRedis, live_api: Any
) -> None:
    with redis.Redis(port=private_redis.port) as admin:
        admin.config_set("maxmemory-policy", "allkeys-lru")
    url = f"redis://127.0.0.1:{private_redis.port}/0"
    api = live_api({"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT, "REDIS_URL": url})
    deadline = time.monotonic() + 10
    while "maxmemory-policy" not in api.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    [line] = [x for x in api.output().splitlines() if "maxmemory-policy" in x]
    assert "maxmemory-policy allkeys-lru" in line and "logged-out token works again" in line, line
    assert f"fix: redis-cli -h 127.0.0.1 -p {private_redis.port} CONFIG SET maxmemory-policy noeviction" in line


# A server on the API's event loop setup whose process may open 40 files; it accepts and keeps
# every connection, so clients run it out of descriptors.
_OUT_OF_DESCRIPTORS = """
import asyncio, logging, resource, sys
from app.api.serving import quiet_accept_errors
logging.basicConfig(stream=sys.stderr, level=logging.INFO)
resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40))
kept = []
async def main():
    quiet_accept_errors(asyncio.get_running_loop())
    server = await asyncio.start_server(lambda r, w: kept.append(w), "127.0.0.1", 0, backlog=512)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
"""


def test_a_server_out_of_descriptors_says_so_once_with_a_count_not_once_per_connection() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _OUT_OF_DESCRIPTORS],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    clients: list[socket.socket] = []
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        for _ in range(200):  # the kernel queues them; the server accepts until it is out of descriptors
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(3)  # asyncio tries again every second, each time for every queued connection
    finally:
        for sock in clients:
            sock.close()
        proc.kill()
    stderr = proc.communicate(timeout=10)[1].decode()
    said = [line for line in stderr.splitlines() if "cannot accept connections" in line]
    assert len(said) == 1, stderr[-3000:]
    assert "Too many open files" in said[0] and "(1 since the last such line)" in said[0], said
    assert "Traceback" not in stderr and "out of system resource" not in stderr, stderr[-3000:]


def _answer(port: int, head: bytes, pieces: int) -> bytes:
    """Send ``head`` in ``pieces`` writes (one: it arrives whole) and read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        size = -(-len(head) // pieces)
        try:
            for start in range(0, len(head), size):
                sock.sendall(head[start : start + size])
                if pieces > 1:
                    time.sleep(0.05)  # each piece its own read on the server
        except OSError:  # refused before the rest was sent: the answer is there to read
            pass
        answer = b""
        while b"\r\n\r\n" not in answer:  # the status line and headers of the answer
            data = sock.recv(65536)
            if not data:
                break
            answer += data
        return answer


@pytest.mark.slow
def test_request_headers_over_16_kib_are_refused_with_431_however_they_arrive(
    migrated: Database, live_api: Any
) -> None:
    api = live_api({"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT}, shipped_flags())

    def head(size: int) -> bytes:
        start = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Filler: "
        return start + b"f" * (size - len(start) - 4) + b"\r\n\r\n"

    for pieces in (1, 8):
        fits = _answer(api.port, head(16 * 1024), pieces)  # the request line and headers: 16 KiB
        assert fits.startswith(b"HTTP/1.1 200"), (pieces, fits[:200])
        over = _answer(api.port, head(16 * 1024 + 1), pieces)
        assert over.startswith(b"HTTP/1.1 431"), (pieces, over[:200])
        assert _answer(api.port, head(64 * 1024), pieces).startswith(b"HTTP/1.1 431")
    assert "Traceback" not in api.output()


@pytest.mark.slow
def test_ecomind_dev_closes_a_connection_that_never_finishes_its_headers(migrated: Database, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"DATABASE_URL={migrated.url()}\nJWT_SECRET={JWT}\n")
    port = free_port()
    env = child_env()
    env.update(ECOMIND_HEADER_TIMEOUT="1", ECOMIND_METRICS_PORT="0")
    command = [ECOMIND, "dev", "--port", str(port), "--data-dir", str(tmp_path / ".data")]
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: still_running(proc) and port_open("127.0.0.1", port), 120, "ecomind dev serving")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            started = time.monotonic()
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            assert sock.recv(1024) == b""  # closed, nothing answered
            assert time.monotonic() - started < 5
    finally:
        terminate(proc)  # type: ignore[arg-type]


# -- 2. logout survives a Redis restart ------------------------------------------------


def test_a_revoked_token_stays_refused_after_redis_restarts(migrated: Database, private_redis: LocalRedis) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    env = {"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT, "REDIS_URL": f"redis://127.0.0.1:{private_redis.port}/0"}
    with client(env) as api:
        token, other = login(api, "owner@acme.io"), login(api, "owner@acme.io")
        assert api.post("/v1/auth/logout", headers=bearer(token)).status_code == 204
        assert api.get("/v1/auth/me", headers=bearer(token)).status_code == 401
        private_redis.stop()
        private_redis.start()  # empty: nothing of Redis's state survived
        assert api.get("/v1/auth/me", headers=bearer(token)).status_code == 401
        assert api.get("/v1/auth/me", headers=bearer(other)).status_code == 200
        # Redis down during a logout: PostgreSQL has it, and Redis learns it when back.
        private_redis.stop()
        assert api.post("/v1/auth/logout", headers=bearer(other)).status_code == 204
        assert api.get("/v1/auth/me", headers=bearer(other)).status_code == 401
        private_redis.start()
    with client(env) as restarted:
        assert restarted.get("/v1/auth/me", headers=bearer(token)).status_code == 401
        assert restarted.get("/v1/auth/me", headers=bearer(other)).status_code == 401
    [(count,)] = sql(migrated, "SELECT count(*) FROM revoked_tokens WHERE expires_at > now()")
    assert count == 2


# -- 3. invalid text -------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["\u0000", "a\u0000b", "\ud800", "x\udfffy"])
def test_nul_and_lone_surrogates_are_422(migrated: Database, bad: str) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    with client({"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT}) as api:
        token = login(api, "owner@acme.io")

        def post(path: str, body: dict[str, Any], **kw: Any) -> Any:
            # json.dumps escapes both as \\u0000 / \\ud800, exactly as a client would send them.
            raw = json.dumps(body).encode()
            return api.post(path, content=raw, headers={"content-type": "application/json", **kw})

        auth = bearer(token)
        for body in ({**EVENT, "kind": bad}, {**EVENT, "model": bad}):
            response = post("/v1/events", body, **auth)
            assert response.status_code == 422, response.text
        new_user = {"email": "new@acme.io", "password": f"a-good-pass{bad}phrase-1", "role": "VIEWER"}
        assert post("/v1/users", new_user, **auth).status_code == 422
        assert post("/v1/users", {**new_user, "email": f"n{bad}@acme.io"}, **auth).status_code == 422
        assert post("/v1/auth/login", {"email": "owner@acme.io", "password": f"pw{bad}"}).status_code == 422
        assert api.get("/v1/events/summary", headers=auth).json()["events"] == 0


def test_a_body_not_utf8_or_nested_too_deep_is_422_like_one_that_is_not_json(migrated: Database) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    with client({"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT}) as api:
        token = login(api, "owner@acme.io")
        json_headers = {"content-type": "application/json", **bearer(token)}
        nested = b'{"kind": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"  # deeper than Python recurses
        for raw in (b'{"kind": "\xff\xfe"}', b"\xef\xbf\xbd<\x1bB", b"{not json", nested):
            for path in ("/v1/events", "/v1/users", "/v1/auth/login"):
                response = api.post(path, content=raw, headers=json_headers)
                assert response.status_code == 422, (path, raw, response.text)
                assert response.json()["detail"][0]["type"] == "json_invalid"


def test_a_number_too_large_to_read_or_to_hold_is_422_like_any_invalid_body(migrated: Database) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    with client({"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT}) as api:
        json_headers = {"content-type": "application/json", **bearer(login(api, "owner@acme.io"))}
        huge = b"9" * 5000  # more digits than Python's JSON parser converts
        for number in (huge, b"1e400", b"-" + huge):
            raw = b'{"kind": "inference", "energy_wh": ' + number + b', "co2e_g": "1"}'
            for path in ("/v1/events", "/v1/users", "/v1/auth/login"):
                response = api.post(path, content=raw, headers=json_headers)
                assert response.status_code == 422, (path, number[:8], response.text)
                assert "9999" not in response.text  # the input is not echoed
        response = api.post("/v1/events", content=b'{"kind": "x", "energy_wh": ' + huge + b"}", headers=json_headers)
        assert response.json()["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize("when", [0, "1970-01-01T00:00:00Z", "1999-12-31T23:59:59Z", "9999-01-01T00:00:00Z"])
def test_an_event_outside_the_sane_window_is_422_naming_occurred_at(migrated: Database, when: Any) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    with client({"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT}) as api:
        auth = bearer(login(api, "owner@acme.io"))
        response = api.post("/v1/events", json={**EVENT, "occurred_at": when}, headers=auth)
        assert response.status_code == 422, response.text
        [error] = response.json()["detail"]
        assert error["loc"] == ["body", "occurred_at"] and "2000-01-01" in error["msg"]
        for fine in ("2000-01-01T00:00:00Z", "2024-06-01T12:00:00+02:00", "2024-06-01T12:00:00"):
            assert api.post("/v1/events", json={**EVENT, "occurred_at": fine}, headers=auth).status_code == 201
        assert api.get("/v1/events/summary", headers=auth).json()["events"] == 3


# -- 4. concurrent creation of one email -----------------------------------------------


@pytest.mark.slow
def test_six_parallel_creations_of_one_email_give_one_201_and_five_409(
    migrated: Database, redis_url: str, live_api: Any
) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    api = live_api({"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT, "REDIS_URL": redis_url})
    with api.client() as http:
        token = login(http, "owner@acme.io")  # type: ignore[arg-type]
        barrier = threading.Barrier(6)

        def create(_: int) -> int:
            with api.client() as own:
                barrier.wait()
                body = {"email": "same@acme.io", "password": "a-good-pass-phrase-7", "role": "VIEWER"}
                return own.post("/v1/users", json=body, headers=bearer(token)).status_code

        with ThreadPoolExecutor(6) as pool:
            codes = sorted(pool.map(create, range(6)))
    assert codes == [201, 409, 409, 409, 409, 409]
    assert sql(migrated, "SELECT count(*) FROM users WHERE email = 'same@acme.io'") == [(1,)]


# -- 5. PostgreSQL down ----------------------------------------------------------------


@pytest.mark.slow
def test_postgres_down_is_503_with_retry_after_on_every_endpoint(private_redis: LocalRedis) -> None:
    root = Path(tempfile.mkdtemp(prefix="ecomind-pg-down-"))  # the postgres user must reach it
    pg = LocalPostgres(root, free_port()).start()
    try:
        ensure_role_and_database(pg.superuser_dsn(), user="down", password=f"{CANARY}-d", dbname="down")
        url = f"postgresql://down:{CANARY}-d@127.0.0.1:{pg.port}/down"
        assert migrate(url).returncode == 0
        create_owner(url, "Acme", "owner@acme.io")
        env = {"DATABASE_URL": url, "JWT_SECRET": JWT, "REDIS_URL": f"redis://127.0.0.1:{private_redis.port}/0"}
        with client(env) as api:
            token = login(api, "owner@acme.io")
            assert api.get("/v1/auth/me", headers=bearer(token)).status_code == 200
            pg.stop()
            calls = {
                "login": api.post("/v1/auth/login", json={"email": "owner@acme.io", "password": OWNER_PASSWORD}),
                "me": api.get("/v1/auth/me", headers=bearer(token)),
                "new user": api.post(
                    "/v1/users",
                    json={"email": "x@acme.io", "password": "a-good-pass-phrase-7", "role": "VIEWER"},
                    headers=bearer(token),
                ),
                "event": api.post("/v1/events", json=EVENT, headers=bearer(token)),
                "summary": api.get("/v1/events/summary", headers=bearer(token)),
                "logout": api.post("/v1/auth/logout", headers=bearer(token)),
            }
            for name, response in calls.items():
                assert response.status_code == 503, (name, response.text)
                assert response.headers["Retry-After"] == "5", name
                assert CANARY not in response.text and "127.0.0.1" not in response.text
            ready = api.get("/ready")
            assert ready.status_code == 503 and ready.headers["Retry-After"] == "5"
            assert api.get("/health").status_code == 200
            pg.start()
            assert api.get("/v1/auth/me", headers=bearer(token)).status_code == 200
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


# -- 6. another organisation's emails --------------------------------------------------


@pytest.mark.slow
def test_creating_a_user_whose_email_is_in_another_org_reveals_nothing(migrated: Database, redis_url: str) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    create_owner(migrated.url(), "Other", "owner@other.io", password="the-other-owners-secret-9")
    with client({"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT, "REDIS_URL": redis_url}) as api:
        owner = login(api, "owner@acme.io")
        acme = api.get("/v1/auth/me", headers=bearer(owner)).json()["org_id"]
        api.post(
            "/v1/users",
            json={"email": "admin@acme.io", "password": "admin-password-1", "role": "ADMIN"},
            headers=bearer(owner),
        )
        admin = login(api, "admin@acme.io", "admin-password-1")

        def create(email: str) -> Any:
            body = {"email": email, "password": "a-good-pass-phrase-7", "role": "VIEWER"}
            return api.post("/v1/users", json=body, headers=bearer(admin))

        taken, fresh = create("owner@other.io"), create("never-seen@other.io")
        assert taken.status_code == fresh.status_code == 201
        assert set(taken.json()) == set(fresh.json()) and taken.json()["org_id"] == fresh.json()["org_id"] == acme
        assert taken.headers.keys() == fresh.headers.keys()
        # A second time in the same organisation is a conflict, for both alike.
        assert create("owner@other.io").status_code == create("never-seen@other.io").status_code == 409
        # Both memberships are whole and separate: each password leads to its own organisation.
        theirs = login(api, "owner@other.io", "the-other-owners-secret-9")
        assert api.get("/v1/auth/me", headers=bearer(theirs)).json()["org_id"] != acme
        ours = login(api, "owner@other.io", "a-good-pass-phrase-7")
        assert api.get("/v1/auth/me", headers=bearer(ours)).json() == {
            "id": taken.json()["id"],
            "org_id": acme,
            "email": "owner@other.io",
            "role": "VIEWER",
        }


@pytest.mark.slow
def test_what_an_admin_sees_of_failed_logins_never_depends_on_other_organisations(
    migrated: Database, redis_url: str
) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    create_owner(migrated.url(), "Globex", "boss@globex.io", password="the-globex-owners-secret-9")
    with client({"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT, "REDIS_URL": redis_url}) as api:
        owner = login(api, "owner@acme.io")

        def observe(email: str) -> list[tuple[int, str | None]]:
            """Acme's OWNER gives the email a user in Acme, with a password Acme chose, and probes it."""
            body = {"email": email, "password": "acme-chose-this-pass-7", "role": "VIEWER"}
            assert api.post("/v1/users", json=body, headers=bearer(owner)).status_code == 201
            answers = [wrong(api, email) for _ in range(4)]
            answers.append(api.post("/v1/auth/login", json={"email": email, "password": "acme-chose-this-pass-7"}))
            answers.append(wrong(api, email))
            return [(r.status_code, r.headers.get("Retry-After")) for r in answers]

        in_globex, nowhere_else = observe("boss@globex.io"), observe("nobody@globex.io")
        assert in_globex == nowhere_else  # Acme learns nothing of Globex's members
        # Acme's own success does not reset the guesses aimed at Globex's member either.
        assert [status for status, _ in in_globex] == [401, 401, 401, 401, 200, 429]
        refused = api.post("/v1/auth/login", json={"email": "boss@globex.io", "password": "the-globex-owners-secret-9"})
        assert refused.status_code == 429  # locked for a while, like any email anyone guesses at


# -- 7. password strength --------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "why"),
    [
        (" " * 12, "too easy to guess"),
        ("aaaaaaaaaaaa", "Repeats like"),
        ("short-pw", "at least 12 characters"),
        ("password1234", "too easy to guess"),
        ("acmeacme2024", "too easy to guess"),  # strong but for the organisation's name and email
    ],
)
def test_weak_passwords_are_refused_with_the_reason(migrated: Database, password: str, why: str) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    with client({"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT}) as api:
        token = login(api, "owner@acme.io")
        body = {"email": "new@acme.io", "password": password, "role": "VIEWER"}
        response = api.post("/v1/users", json=body, headers=bearer(token))
        assert response.status_code == 422
        [error] = response.json()["detail"]
        assert error["loc"] == ["body", "password"] and why in error["msg"]
        assert password.strip() == "" or password not in response.text


def test_create_admin_applies_the_same_password_policy(migrated: Database) -> None:
    with pytest.raises(AssertionError, match="too easy to guess"):
        create_owner(migrated.url(), "Acme", "owner@acme.io", password="aaaaaaaaaaaa")
    assert sql(migrated, "SELECT count(*) FROM users") == [(0,)]


# -- 8. deleted and disabled users, malformed claims -----------------------------------


@pytest.mark.slow
def test_tokens_of_deleted_or_disabled_users_are_401(migrated: Database, redis_url: str) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    env = {"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT, "REDIS_URL": redis_url}
    with client(env, Tuning(user_cache_seconds=0)) as api:
        owner = login(api, "owner@acme.io")
        for email in ("gone@acme.io", "off@acme.io"):
            body = {"email": email, "password": "a-good-pass-phrase-7", "role": "ANALYST"}
            assert api.post("/v1/users", json=body, headers=bearer(owner)).status_code == 201
        gone, off = (
            login(api, "gone@acme.io", "a-good-pass-phrase-7"),
            login(api, "off@acme.io", "a-good-pass-phrase-7"),
        )
        assert api.post("/v1/events", json=EVENT, headers=bearer(gone)).status_code == 201
        sql(migrated, "DELETE FROM users WHERE email = 'gone@acme.io'")
        sql(migrated, "UPDATE users SET disabled_at = now() WHERE email = 'off@acme.io'")
        for token in (gone, off):
            assert api.post("/v1/events", json=EVENT, headers=bearer(token)).status_code == 401
            assert api.get("/v1/events/summary", headers=bearer(token)).status_code == 401
            assert api.get("/v1/auth/me", headers=bearer(token)).status_code == 401
        # A demotion takes effect on tokens already issued: the role is read with the user.
        body = {"email": "admin@acme.io", "password": "admin-password-1", "role": "ADMIN"}
        assert api.post("/v1/users", json=body, headers=bearer(owner)).status_code == 201
        admin = login(api, "admin@acme.io", "admin-password-1")
        sql(migrated, "UPDATE users SET role = 'VIEWER' WHERE email = 'admin@acme.io'")
        body = {"email": "x@acme.io", "password": "a-good-pass-phrase-7", "role": "VIEWER"}
        assert api.post("/v1/users", json=body, headers=bearer(admin)).status_code == 403
        assert api.post("/v1/events", json=EVENT, headers=bearer(admin)).status_code == 403
        # A disabled user cannot log in either; the answer is the one for a wrong password.
        refused = api.post("/v1/auth/login", json={"email": "off@acme.io", "password": "a-good-pass-phrase-7"})
        assert refused.status_code == 401 and refused.json() == wrong(api, "owner@acme.io").json()


def test_a_user_found_enabled_is_cached_briefly(migrated: Database) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    with client({"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT}, Tuning(user_cache_seconds=300)) as api:
        token = login(api, "owner@acme.io")
        assert api.get("/v1/events/summary", headers=bearer(token)).status_code == 200
        sql(migrated, "UPDATE users SET disabled_at = now()")
        # Within the cache time the request path asks PostgreSQL nothing about the user.
        assert api.get("/v1/events/summary", headers=bearer(token)).status_code == 200
    with client({"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT}, Tuning(user_cache_seconds=300)) as fresh:
        assert fresh.get("/v1/events/summary", headers=bearer(token)).status_code == 401


def test_signed_tokens_with_malformed_claims_are_401(migrated: Database) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    with client({"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT}) as api:
        token = login(api, "owner@acme.io")
        claims = pyjwt.decode(token, options={"verify_signature": False})
        kid = pyjwt.get_unverified_header(token)["kid"]

        def signed(**changes: Any) -> str:
            return pyjwt.encode({**claims, **changes}, JWT, algorithm="HS256", headers={"kid": kid})

        other_org = "00000000-0000-4000-8000-000000000000"
        for bad in (
            signed(sub="not-a-uuid"),
            signed(org="not-a-uuid"),
            signed(sub=123),
            signed(role="SUPERUSER"),
            signed(jti=["a"]),
            signed(jti="x" * 65),
            signed(jti="a\u0000b"),
            signed(org=other_org),
            signed(sub=other_org),
        ):
            for method, path in (("GET", "/v1/auth/me"), ("POST", "/v1/events"), ("GET", "/v1/events/summary")):
                response = api.request(method, path, json=EVENT if method == "POST" else None, headers=bearer(bad))
                assert response.status_code == 401, (path, response.text)
