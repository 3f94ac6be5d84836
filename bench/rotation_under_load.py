"""Zero-downtime proof: the API under load while its secrets rotate.

Starts, on loopback only: a PostgreSQL with password auth, moto's Secrets Manager
server, and the API under uvicorn with DATABASE_URL and JWT_SECRET as Secrets
Manager references. Then N clients send authenticated writes (POST /v1/events)
and reads (GET /v1/events/summary) for a bounded time; after a quiet phase, the
database password is rotated single-user (the hard case: between setSecret and
finishSecret only AWSPENDING logs in) and the JWT secret is rotated, through the
same handlers and local driver as ``ecomind secrets rotate --local``.

The API's pool recycles connections every second, so new connections (which take
the credentials of the moment) are opened all through the rotations.

Clients log in again every few seconds, as a real client refreshes its token; JWT
rotations are spaced so a token is never more than one rotation old.

Usage: python bench/rotation_under_load.py [--seconds 60] [--clients 20]
       [--db-rotations 10] [--jwt-rotations 3] [--markdown docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "api"))

from app.data.local import (  # noqa: E402
    LocalPostgres,
    ensure_role_and_database,
    free_port,
    port_open,
    terminate,
)
from app.rotation.driver import rotate_locally  # noqa: E402
from app.rotation.jwt import JwtRotator  # noqa: E402
from app.rotation.postgres import PostgresRotator  # noqa: E402
from app.secrets.environment import model  # noqa: E402
from tests.support.services import MotoServer  # noqa: E402

OWNER_PASSWORD = "bench-owner-password"
RELOGIN_SECONDS = 3.0


@dataclass
class Sample:
    started: float
    latency: float
    ok: bool
    kind: str


@dataclass
class Result:
    clients: int
    seconds: float
    db_rotations: int
    jwt_rotations: int
    sent: int = 0
    failed: int = 0
    writes_acknowledged: int = 0
    rows_found: int = 0
    failures: list[str] = field(default_factory=list)
    p50_before: float = 0.0
    p99_before: float = 0.0
    p50_during: float = 0.0
    p99_during: float = 0.0

    def table(self, command: str) -> str:
        return "\n".join(
            [
                f"Command: `{command}`",
                "",
                "| clients | seconds | DB rotations (single-user) | JWT rotations | requests sent | failed |"
                " writes acknowledged | rows found | p50 / p99 before (ms) | p50 / p99 during (ms) |",
                "|---|---|---|---|---|---|---|---|---|---|",
                f"| {self.clients} | {self.seconds:.0f} | {self.db_rotations} | {self.jwt_rotations} | {self.sent} |"
                f" {self.failed} | {self.writes_acknowledged} | {self.rows_found} |"
                f" {self.p50_before:.1f} / {self.p99_before:.1f} | {self.p50_during:.1f} / {self.p99_during:.1f} |",
            ]
        )


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


class Stack:
    """PostgreSQL, moto and the API on loopback; everything stops in close()."""

    def __init__(self, plain: bool = False, env: dict[str, str] | None = None) -> None:
        # plain: settings as plain values (no references, nothing for the store to do)
        self.plain = plain
        # env: variables for the API and the CLI, applied last (ECOMIND_METRICS=off, a port...)
        self.overrides = dict(env or {})
        self.tmp = Path(tempfile.mkdtemp(prefix="ecomind-bench-"))
        self.tmp.chmod(0o711)  # the postgres user must traverse it to reach its data folder
        self.pg = LocalPostgres(self.tmp / "pg", free_port())
        self.moto = MotoServer()
        self.api: subprocess.Popen[bytes] | None = None
        self.api_port = free_port()

    def start(self, app_factory: str = "rotation_app:app_factory") -> Stack:
        self.pg.start()
        self.moto.start()
        password = "bench-initial-password-0001"
        ensure_role_and_database(self.pg.superuser_dsn(), user="ecomind", password=password, dbname="ecomind")
        self.sm = boto3.client(
            "secretsmanager",
            region_name="us-east-1",
            endpoint_url=self.moto.url,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        secret = {
            "engine": "postgres",
            "host": "127.0.0.1",
            "port": self.pg.port,
            "dbname": "ecomind",
            "username": "ecomind",
            "password": password,
        }
        self.sm.create_secret(Name="bench/database", SecretString=json.dumps(secret))
        self.sm.create_secret(Name="bench/jwt", SecretString="bench-jwt-" + "s" * 40)
        for name in ("bench/database", "bench/jwt"):
            self.sm.rotate_secret(SecretId=name, RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False)
        env = {
            # Any free port for the metrics listener: two stacks, or a stack and a running API, never collide on 9464.
            "ECOMIND_METRICS_PORT": "0",
            **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ENVIRONMENT", "DATABASE_", "JWT_"))},
            "ENVIRONMENT": "development",
            "DATABASE_URL": "aws-secretsmanager:bench/database",
            "JWT_SECRET": "aws-secretsmanager:bench/jwt",
            "SECRETS_CACHE_TTL": "5",
            "AWS_ENDPOINT_URL": self.moto.url,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
        }
        if self.plain:
            env["DATABASE_URL"] = f"postgresql://ecomind:{password}@127.0.0.1:{self.pg.port}/ecomind"
            env["JWT_SECRET"] = "bench-jwt-" + "s" * 40
        env.update(self.overrides)
        self.env = env
        migrate = subprocess.run(
            [str(Path(sys.executable).with_name("ecomind")), "migrate"],
            env=env,
            cwd=self.tmp,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"migrations failed: {migrate.stderr[-400:]}")
        admin = subprocess.run(
            [
                str(Path(sys.executable).with_name("ecomind")),
                "users",
                "create-admin",
                "--org",
                "Bench",
                "--email",
                "owner@bench.io",
            ],
            env=env,
            cwd=self.tmp,
            input=OWNER_PASSWORD + "\n",
            capture_output=True,
            text=True,
            timeout=60,
        )
        if admin.returncode != 0:
            raise RuntimeError(f"create-admin failed: {admin.stderr[-400:]}")
        self.api = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                app_factory,
                "--factory",
                "--app-dir",
                str(ROOT / "bench"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.api_port),
                "--log-level",
                os.environ.get("BENCH_API_LOG_LEVEL", "warning"),
            ],
            env=env,
            cwd=self.tmp,
        )
        deadline = time.monotonic() + 60
        while not port_open("127.0.0.1", self.api_port):
            if self.api.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the API did not start")
            time.sleep(0.1)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def rows(self) -> int:
        with psycopg.connect(self.pg.superuser_dsn("ecomind")) as conn:
            return int(conn.execute("SELECT count(*) FROM usage_events").fetchone()[0])  # type: ignore[index]

    def close(self) -> None:
        terminate(self.api, timeout=15)
        self.moto.stop()
        self.pg.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _client(stack: Stack, stop: threading.Event, samples: list[Sample], acked: list[int], errors: list[str]) -> None:
    while not stop.is_set():
        started = time.monotonic()
        try:
            _client_loop(stack, stop, samples, acked, errors)
        except httpx.HTTPError as exc:  # a transport failure is a failed request too
            samples.append(Sample(started, time.monotonic() - started, False, "transport"))
            errors.append(f"transport {type(exc).__name__}: {exc}")


def _client_loop(
    stack: Stack, stop: threading.Event, samples: list[Sample], acked: list[int], errors: list[str]
) -> None:
    with httpx.Client(base_url=stack.url, timeout=30) as http:
        token, token_at = "", 0.0
        i = 0
        while not stop.is_set():
            if time.monotonic() - token_at > RELOGIN_SECONDS:
                started = time.monotonic()
                r = http.post("/v1/auth/login", json={"email": "owner@bench.io", "password": OWNER_PASSWORD})
                if r.status_code == 429 and "being checked at once" in r.text:
                    # Logins of the one account in flight together fill its window: no failure,
                    # and docs/security.md's client retries after Retry-After (1 s).
                    time.sleep(float(r.headers.get("Retry-After", "1")))
                    continue
                samples.append(Sample(started, time.monotonic() - started, r.status_code == 200, "login"))
                if r.status_code != 200:
                    errors.append(f"login {r.status_code}: {r.text[:120]}")
                    time.sleep(0.2)
                    continue
                token, token_at = r.json()["access_token"], time.monotonic()
            headers = {"Authorization": f"Bearer {token}"}
            started = time.monotonic()
            if i % 2 == 0:
                r = http.post(
                    "/v1/events",
                    headers=headers,
                    json={"kind": "inference", "model": "bench", "energy_wh": "1.5", "co2e_g": "0.6"},
                )
                ok = r.status_code == 201
                if ok:
                    acked.append(1)
                kind = "write"
            else:
                r = http.get("/v1/events/summary", headers=headers)
                ok = r.status_code == 200
                kind = "read"
            samples.append(Sample(started, time.monotonic() - started, ok, kind))
            if not ok:
                errors.append(f"{kind} {r.status_code}: {r.text[:120]}")
            i += 1


def _hold_pending_window(step: str) -> None:
    """Widen the single-user window (only AWSPENDING logs in) before finishSecret."""
    if os.environ.get("BENCH_TRACE"):
        print(f"{time.time():.3f} rotation step {step}", file=sys.stderr, flush=True)
    if step == "finishSecret":
        time.sleep(0.3)


def run(seconds: float = 60, clients: int = 20, db_rotations: int = 10, jwt_rotations: int = 3) -> Result:
    stack = Stack().start()
    try:
        samples: list[Sample] = []
        acked: list[int] = []
        errors: list[str] = []
        stop = threading.Event()
        threads = [
            threading.Thread(target=_client, args=(stack, stop, samples, acked, errors), daemon=True)
            for _ in range(clients)
        ]
        begin = time.monotonic()
        for t in threads:
            t.start()
        quiet = min(10.0, seconds / 5)
        time.sleep(quiet)
        rotation_start = time.monotonic()
        window = seconds - quiet - 1
        db = PostgresRotator(stack.sm, environment=model("development"))
        jwt = JwtRotator(stack.sm)
        # Interleave: the DB rotations spread over the window, JWT rotations evenly among them.
        jwt_every = max(1, db_rotations // max(1, jwt_rotations))
        pause = max(0.2, window / max(1, db_rotations) - 0.5)
        done_jwt = 0
        for n in range(db_rotations):
            rotate_locally(stack.sm, "bench/database", db, on_step=_hold_pending_window)
            if done_jwt < jwt_rotations and (n + 1) % jwt_every == 0:
                rotate_locally(stack.sm, "bench/jwt", jwt)
                done_jwt += 1
            time.sleep(pause)
        while done_jwt < jwt_rotations:
            rotate_locally(stack.sm, "bench/jwt", jwt)
            done_jwt += 1
        remaining = seconds - (time.monotonic() - begin)
        if remaining > 0:
            time.sleep(remaining)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        result = Result(clients, time.monotonic() - begin, db_rotations, jwt_rotations)
        result.sent = len(samples)
        result.failed = sum(not s.ok for s in samples)
        result.failures = errors[:20]
        result.writes_acknowledged = len(acked)
        result.rows_found = stack.rows()
        before = [s.latency * 1000 for s in samples if s.started < rotation_start and s.kind != "login"]
        during = [s.latency * 1000 for s in samples if s.started >= rotation_start and s.kind != "login"]
        result.p50_before, result.p99_before = _percentile(before, 50), _percentile(before, 99)
        result.p50_during, result.p99_during = _percentile(during, 50), _percentile(during, 99)
        return result
    finally:
        stack.close()


def write_markdown(path: Path, section: str) -> None:
    begin, end = "<!-- rotation-under-load:begin -->", "<!-- rotation-under-load:end -->"
    block = f"{begin}\n{section}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n## Rotation under load\n\n" + block + "\n"
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--db-rotations", type=int, default=10)
    parser.add_argument("--jwt-rotations", type=int, default=3)
    parser.add_argument("--markdown", type=Path, help="update this file's rotation section with the result table")
    args = parser.parse_args()
    result = run(args.seconds, args.clients, args.db_rotations, args.jwt_rotations)
    command = "make bench-rotation"
    table = result.table(command)
    print(table)
    for failure in result.failures:
        print("failure:", failure, file=sys.stderr)
    if args.markdown:
        machine = f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, loopback only"
        write_markdown(args.markdown, f"Measured on {time.strftime('%Y-%m-%d')}, {machine}.\n\n{table}")
    ok = result.failed == 0 and result.writes_acknowledged == result.rows_found
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
