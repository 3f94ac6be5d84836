"""The API end to end: roles, events, JWT and database rotation, readiness, SSL policy."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import jwt as pyjwt
import pytest

from app.data.local import LocalPostgres, LocalRedis, ensure_role_and_database
from app.main import StartupError

from ..conftest import CANARY, Aws, Database
from ..support.polling import wait_until
from ..support.services import free_port
from .helpers import JWT, bearer, client, create_owner, login


@pytest.mark.slow
def test_roles_and_events(migrated: Database, redis_url: str) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    create_owner(migrated.url(), "Other", "owner@other.io")
    env = {"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT, "REDIS_URL": redis_url}
    with client(env) as api:
        owner = login(api, "owner@acme.io")
        other = login(api, "owner@other.io")
        other_org = api.get("/v1/auth/me", headers=bearer(other)).json()["org_id"]
        new = {"email": "anon@acme.io", "password": "long-enough-pass", "role": "OWNER"}
        assert api.post("/v1/users", json=new).status_code == 401  # anonymous registration refused
        admin = {"email": "admin@acme.io", "password": "admin-password-1", "role": "ADMIN"}
        viewer = {"email": "viewer@acme.io", "password": "viewer-password-1", "role": "VIEWER"}
        assert api.post("/v1/users", json=admin, headers=bearer(owner)).status_code == 201
        assert api.post("/v1/users", json=viewer, headers=bearer(owner)).status_code == 201
        admin_t = login(api, "admin@acme.io", "admin-password-1")
        viewer_t = login(api, "viewer@acme.io", "viewer-password-1")
        me = api.get("/v1/auth/me", headers=bearer(viewer_t)).json()
        assert me["role"] == "VIEWER" and me["email"] == "viewer@acme.io"
        # A VIEWER cannot create users, not even to give itself a role.
        self_promote = {"email": "v2@acme.io", "password": "viewer-password-2", "role": "OWNER"}
        assert api.post("/v1/users", json=self_promote, headers=bearer(viewer_t)).status_code == 403
        # An ADMIN cannot create users in another org, nor an OWNER.
        elsewhere = {**viewer, "email": "x@other.io", "org_id": other_org}
        assert api.post("/v1/users", json=elsewhere, headers=bearer(admin_t)).status_code == 403
        assert (
            api.post("/v1/users", json={**self_promote, "email": "o2@acme.io"}, headers=bearer(admin_t)).status_code
            == 403
        )
        # Events: writers record, everyone in the org reads the summary; orgs are separate.
        for kind, wh, g in (("inference", "12.5", "4.1"), ("inference", "7.5", "2.4"), ("training", "100", "33")):
            r = api.post("/v1/events", json={"kind": kind, "energy_wh": wh, "co2e_g": g}, headers=bearer(admin_t))
            assert r.status_code == 201, r.text
        assert (
            api.post(
                "/v1/events", json={"kind": "x", "energy_wh": 1, "co2e_g": 1}, headers=bearer(viewer_t)
            ).status_code
            == 403
        )
        assert (
            api.post(
                "/v1/events", json={"kind": "x", "energy_wh": -1, "co2e_g": 1}, headers=bearer(admin_t)
            ).status_code
            == 422
        )
        summary = api.get("/v1/events/summary", headers=bearer(viewer_t)).json()
        assert summary["events"] == 3
        assert float(summary["energy_wh"]) == 120.0 and float(summary["co2e_g"]) == 39.5
        assert [k["kind"] for k in summary["by_kind"]] == ["inference", "training"]
        assert api.get("/v1/events/summary", headers=bearer(other)).json()["events"] == 0


@pytest.mark.slow
def test_bad_tokens_are_rejected(migrated: Database) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    with client({"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT}) as api:
        token = login(api, "owner@acme.io")
        claims = pyjwt.decode(token, options={"verify_signature": False})
        header = pyjwt.get_unverified_header(token)
        unsigned = pyjwt.encode(claims, None, algorithm="none", headers={"kid": header["kid"]})
        wrong_alg = pyjwt.encode(claims, JWT.encode() * 2, algorithm="HS512", headers={"kid": header["kid"]})
        expired = pyjwt.encode(
            {**claims, "exp": int(time.time()) - 10}, JWT, algorithm="HS256", headers={"kid": header["kid"]}
        )
        unknown_kid = pyjwt.encode(claims, JWT, algorithm="HS256", headers={"kid": "nope"})
        forged = pyjwt.encode(
            {**claims, "role": "OWNER"},
            "another-key-of-32-bytes-or-more!!",
            algorithm="HS256",
            headers={"kid": header["kid"]},
        )
        tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        for bad in (unsigned, wrong_alg, expired, unknown_kid, forged, tampered, "not-a-jwt"):
            assert api.get("/v1/auth/me", headers=bearer(bad)).status_code == 401, bad
        assert api.get("/v1/auth/me", headers=bearer(token)).status_code == 200
        assert api.post("/v1/auth/login", json={"email": "owner@acme.io", "password": "wrong"}).status_code == 401


@pytest.mark.slow
def test_database_password_rotation_without_restart(
    migrated: Database, aws: Aws, caplog: pytest.LogCaptureFixture
) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    aws.create("rot/database", migrated.rds_secret())
    env = {**aws.env, "DATABASE_URL": "aws-secretsmanager:rot/database", "JWT_SECRET": JWT}
    with client(env) as api:
        token = login(api, "owner@acme.io")
        engine = api.app.state.services.sessions.kw["bind"]  # type: ignore[attr-defined]
        held = engine.connect()  # an open connection must survive the rotation

        # 1. Rotated in PostgreSQL and in Secrets Manager (AWSCURRENT moved).
        new = f"{CANARY}-rotated-1"
        migrated.set_password(new)
        aws.client.put_secret_value(SecretId="rot/database", SecretString=migrated.rds_secret(new))
        engine.pool.dispose()  # the next requests open new connections
        assert api.get("/v1/auth/me", headers=bearer(token)).status_code == 200
        assert api.get("/ready").status_code == 200

        # 2. Single-user rotation window: only AWSPENDING holds the new password.
        pending = f"{CANARY}-rotated-2"
        migrated.set_password(pending)
        aws.client.put_secret_value(
            SecretId="rot/database", SecretString=migrated.rds_secret(pending), VersionStages=["AWSPENDING"]
        )
        engine.pool.dispose()
        time.sleep(2.1)  # past the hook's refresh window, as a real window lasts seconds
        for _ in range(3):
            r = api.get("/v1/events/summary", headers=bearer(token))
            assert r.status_code == 200, r.text
            assert CANARY not in r.text
        from sqlalchemy import text

        assert held.execute(text("SELECT 1")).scalar() == 1
        held.close()
    assert "AWSPENDING" in caplog.text


@pytest.mark.slow
def test_jwt_rotation_keeps_old_tokens_and_signs_new_ones(migrated: Database, aws: Aws, redis_url: str) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    aws.create("rot/jwt", JWT)
    env = {
        **aws.env,
        "DATABASE_URL": migrated.url(),
        "JWT_SECRET": "aws-secretsmanager:rot/jwt",
        "REDIS_URL": redis_url,
        "SECRETS_CACHE_TTL": "1",
    }
    with client(env) as api:
        before = login(api, "owner@acme.io")
        old_kid = pyjwt.get_unverified_header(before)["kid"]
        new_secret = "rotated-jwt-secret-" + "y" * 40
        aws.client.put_secret_value(SecretId="rot/jwt", SecretString=new_secret)  # old version -> AWSPREVIOUS
        after = wait_until(
            lambda: (
                (token := login(api, "owner@acme.io"))
                and pyjwt.get_unverified_header(token)["kid"] != old_kid
                and token
            ),
            15,
            "the API picking up the rotated JWT secret",
            interval=0.3,
        )
        pyjwt.decode(after, new_secret, algorithms=["HS256"])  # signed with the new key
        assert api.get("/v1/auth/me", headers=bearer(before)).status_code == 200  # issued before: still valid
        assert api.get("/v1/auth/me", headers=bearer(after)).status_code == 200
        assert api.post("/v1/auth/logout", headers=bearer(after)).status_code == 204
        assert api.get("/v1/auth/me", headers=bearer(after)).status_code == 401


def test_logout_without_redis_is_kept_in_postgres(migrated: Database) -> None:
    create_owner(migrated.url(), "Acme", "owner@acme.io")
    env = {"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT}
    with client(env) as api:
        token = login(api, "owner@acme.io")
        assert api.post("/v1/auth/logout", headers=bearer(token)).status_code == 204
        assert api.get("/v1/auth/me", headers=bearer(token)).status_code == 401
    with client(env) as restarted:  # another process, or this one after a restart
        assert restarted.get("/v1/auth/me", headers=bearer(token)).status_code == 401


@pytest.mark.slow
def test_ready_follows_postgres_and_redis_without_restart(tmp_path: Path) -> None:
    pg = LocalPostgres(Path(__import__("tempfile").mkdtemp(prefix="ecomind-pg-ready-")), free_port()).start()
    cache = LocalRedis(free_port()).start()
    try:
        ensure_role_and_database(pg.superuser_dsn(), user="ready", password=f"{CANARY}-r", dbname="ready")
        env = {
            "DATABASE_URL": f"postgresql://ready:{CANARY}-r@127.0.0.1:{pg.port}/ready",
            "JWT_SECRET": JWT,
            "REDIS_URL": f"redis://127.0.0.1:{cache.port}/0",
        }
        with client(env) as api:
            assert api.get("/ready").json() == {
                "status": "ready",
                "checks": {"database": "ok", "redis": "ok"},
                "secrets": {},  # plain values: nothing to refresh, no "secrets" check
                "stale_after_seconds": 900.0,  # 3 x the default TTL of 300 s
            }
            pg.stop()
            down = api.get("/ready")
            assert down.status_code == 503 and down.json()["checks"]["database"] == "unavailable"
            assert CANARY not in down.text and "127.0.0.1" not in down.text
            pg.start()
            assert api.get("/ready").status_code == 200
            cache.stop()
            down = api.get("/ready")
            assert down.status_code == 503 and down.json()["checks"] == {"database": "ok", "redis": "unavailable"}
            cache.start()
            assert api.get("/ready").status_code == 200
            assert api.get("/health").json() == {"status": "ok"}
    finally:
        cache.stop()
        pg.stop()


def test_production_database_refusing_ssl_fails_clearly(
    migrated: Database, aws: Aws, caplog: pytest.LogCaptureFixture
) -> None:
    env = {**aws.env, "ENVIRONMENT": "production", "DATABASE_URL": migrated.url(), "JWT_SECRET": JWT}
    with caplog.at_level(logging.INFO), pytest.raises(StartupError) as info, client(env):
        pass
    assert "refused SSL" in str(info.value)
    assert migrated.password not in caplog.text and migrated.password not in str(info.value)


def test_validation_errors_do_not_echo_the_password(migrated: Database) -> None:
    with client({"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT}) as api:
        response = api.post("/v1/auth/login", json={"email": "not-an-email", "password": CANARY})
        assert response.status_code == 422
        assert CANARY not in response.text
        assert response.json()["detail"][0]["loc"] == ["body", "email"]
