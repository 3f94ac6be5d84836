"""Logins under abuse: memory and latency of parallel failed logins, and good-login throughput.

Usage: python bench/login_abuse.py [--before-rev REV] [--parallel 40] [--good-seconds 10]
       [--good-clients 8] [--markdown docs/benchmarks.md]

Each configuration runs on loopback only: a PostgreSQL with password auth, a Redis,
and the API under uvicorn (``app.asgi:app``, one process), started afresh for each
phase so one phase's memory does not carry into the next:

1. burst: ``--parallel`` clients, released together by a barrier, each send one
   login with a wrong password for the same account. Reported: the API process's
   peak resident memory (``VmHWM`` from /proc, which includes start-up), its
   resident memory before the burst, the p99 latency and the answers' statuses.
2. good logins: ``--good-clients`` clients log in with the right password for
   ``--good-seconds``; logins per second and p99.

Configurations: ``before`` is the API at ``--before-rev`` (exported with
``git archive``, its own migrations and ``create-admin``); ``after`` is this tree
with the default limits; ``after, limits off`` raises the login limits out of the
way so every failed login reaches argon2 and only the hashing pool bounds memory.
The memory budget is app.auth.hashing.memory_budget_mib() for the default tuning; the run
exits 1 when an ``after`` burst goes over it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "api"))

from rotation_under_load import _percentile  # noqa: E402

from app.auth.hashing import memory_budget_mib  # noqa: E402
from app.data.local import LocalPostgres, LocalRedis, ensure_role_and_database, free_port, port_open, terminate  # noqa: E402
from app.settings.knobs import Tuning  # noqa: E402

PASSWORD = "abuse-bench-owner-password"
EMAIL = "owner@abuse.io"
LIMITS_OFF = {
    "ECOMIND_LOGIN_FAILURES_PER_ADDRESS": "1000000/minute",
    "ECOMIND_LOGIN_FAILURES_PER_ACCOUNT": "1000000/minute",
}


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


@dataclass
class Burst:
    rss_before_mib: float
    peak_mib: float
    p50_ms: float
    p99_ms: float
    statuses: dict[int, int]


@dataclass
class Throughput:
    per_second: float
    p99_ms: float
    peak_mib: float
    failed: int


class Stack:
    """PostgreSQL, Redis and the API of ``source`` (a folder holding api/), on loopback."""

    def __init__(self, source: Path, extra_env: dict[str, str] | None = None) -> None:
        self.source = source
        self.tmp = Path(tempfile.mkdtemp(prefix="ecomind-abuse-"))
        self.tmp.chmod(0o711)  # the postgres user must traverse it
        self.pg = LocalPostgres(self.tmp / "pg", free_port())
        self.redis = LocalRedis(free_port())
        self.extra_env = extra_env or {}
        self.api: subprocess.Popen[bytes] | None = None
        self.port = free_port()

    def start(self) -> Stack:
        self.pg.start()
        self.redis.start()
        password = "abuse-bench-db-password"
        ensure_role_and_database(self.pg.superuser_dsn(), user="ecomind", password=password, dbname="ecomind")
        keep = ("PATH", "HOME", "LANG")
        self.env = {
            **{k: v for k, v in os.environ.items() if k in keep},
            "DATABASE_URL": f"postgresql://ecomind:{password}@127.0.0.1:{self.pg.port}/ecomind",
            "JWT_SECRET": "abuse-bench-jwt-" + "s" * 40,
            "REDIS_URL": f"redis://127.0.0.1:{self.redis.port}/0",
            **self.extra_env,
        }
        # The CLI of the measured tree, so "before" hashes its owner's password as it did then.
        cli = "import sys; from app.cli import main; sys.argv[0] = 'ecomind'; sys.exit(main())"
        result = subprocess.run(
            [sys.executable, "-c", cli, "migrate"],
            env={**self.env, "PYTHONPATH": str(self.source / "api")},
            cwd=self.tmp,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"migrations failed: {result.stderr[-400:]}")
        result = subprocess.run(
            [sys.executable, "-c", cli, "users", "create-admin", "--org", "Abuse", "--email", EMAIL],
            env={**self.env, "PYTHONPATH": str(self.source / "api")},
            cwd=self.tmp,
            input=PASSWORD + "\n",
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"create-admin failed: {result.stderr[-400:]}")
        return self

    def serve(self) -> None:
        """A fresh API process and an empty Redis: no phase inherits the last one's lockouts."""
        terminate(self.api, timeout=15)
        with redis.Redis(port=self.redis.port) as client:
            client.flushall()
        self.api = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                # A revision from before the prefetch (issue 14) has no app.asgi: it served app.main.
                "app.asgi:app" if (self.source / "api/app/asgi.py").exists() else "app.main:app",
                "--app-dir",
                str(self.source / "api"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            env=self.env,
            cwd=self.tmp,
        )
        deadline = time.monotonic() + 60
        while not port_open("127.0.0.1", self.port):
            if self.api.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the API did not start")
            time.sleep(0.1)
        with httpx.Client(base_url=self.url, timeout=60) as http:  # warm: imports, pool, first hash
            assert http.get("/ready").status_code == 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.api is not None
        return self.api.pid

    def close(self) -> None:
        terminate(self.api, timeout=15)
        self.redis.stop()
        self.pg.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def burst(stack: Stack, parallel: int) -> Burst:
    stack.serve()
    rss_before = _kib(stack.pid, "VmRSS") / 1024
    barrier = threading.Barrier(parallel)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def one() -> None:
        with httpx.Client(base_url=stack.url, timeout=120) as http:
            barrier.wait()
            started = time.perf_counter()
            r = http.post("/v1/auth/login", json={"email": EMAIL, "password": "not-the-password-at-all"})
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed * 1000)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    threads = [threading.Thread(target=one) for _ in range(parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    peak = _kib(stack.pid, "VmHWM") / 1024
    return Burst(
        rss_before, peak, _percentile(latencies, 50), _percentile(latencies, 99), dict(sorted(statuses.items()))
    )


def good_logins(stack: Stack, clients: int, seconds: float) -> Throughput:
    stack.serve()
    latencies: list[float] = []
    failed: list[int] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=stack.url, timeout=120) as http:
            while not stop.is_set():
                started = time.perf_counter()
                r = http.post("/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
                latencies.append((time.perf_counter() - started) * 1000)
                if r.status_code != 200:
                    failed.append(r.status_code)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=120)
    elapsed = time.perf_counter() - began
    peak = _kib(stack.pid, "VmHWM") / 1024
    return Throughput((len(latencies) - len(failed)) / elapsed, _percentile(latencies, 99), peak, len(failed))


def export(rev: str) -> Path:
    """The tree of ``rev`` (api/ only) in a temporary folder: git archive, no checkout."""
    target = Path(tempfile.mkdtemp(prefix="ecomind-before-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "api"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def measure(label: str, source: Path, env: dict[str, str], parallel: int, clients: int, seconds: float) -> str:
    stack = Stack(source, env).start()
    try:
        b = burst(stack, parallel)
        g = good_logins(stack, clients, seconds)
    finally:
        stack.close()
    statuses = ", ".join(f"{n}x {code}" for code, n in b.statuses.items())
    print(
        f"{label}: burst peak {b.peak_mib:.0f} MiB, p99 {b.p99_ms:.0f} ms ({statuses}); "
        f"good logins {g.per_second:.1f}/s, p99 {g.p99_ms:.0f} ms",
        flush=True,
    )
    return (
        f"| {label} | {b.rss_before_mib:.0f} | {b.peak_mib:.0f} | {b.p50_ms:.0f} / {b.p99_ms:.0f} | {statuses} |"
        f" {g.per_second:.1f} | {g.p99_ms:.0f} | {g.peak_mib:.0f} | {g.failed} |"
    )


def write_markdown(path: Path, section: str) -> None:
    begin, end = "<!-- login-abuse:begin -->", "<!-- login-abuse:end -->"
    block = f"{begin}\n{section}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n## Logins under abuse\n\n" + block + "\n"
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before-rev", help="git revision of the 'before' API (omit to measure 'after' only)")
    parser.add_argument("--parallel", type=int, default=40)
    parser.add_argument("--good-seconds", type=float, default=10)
    parser.add_argument("--good-clients", type=int, default=8)
    parser.add_argument("--markdown", type=Path, help="update this file's login-abuse section")
    args = parser.parse_args()

    budget = memory_budget_mib(Tuning().hash_workers)
    rows: list[str] = []
    before: Path | None = None
    try:
        if args.before_rev:
            before = export(args.before_rev)
            rows.append(
                measure(f"before ({args.before_rev})", before, {}, args.parallel, args.good_clients, args.good_seconds)
            )
        after_rows = [
            measure("after", ROOT, {}, args.parallel, args.good_clients, args.good_seconds),
            measure("after, limits off", ROOT, LIMITS_OFF, args.parallel, args.good_clients, args.good_seconds),
        ]
        rows += after_rows
    finally:
        if before is not None:
            shutil.rmtree(before, ignore_errors=True)
    peaks = [float(r.split("|")[3]) for r in after_rows]
    within = all(p <= budget for p in peaks)
    command = "make bench-abuse" + (f" BEFORE={args.before_rev}" if args.before_rev else "")
    table = "\n".join(
        [
            f"Measured {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, Python {sys.version.split()[0]}, loopback"
            f" only. Command: `{command}` (`python bench/login_abuse.py --parallel {args.parallel}"
            f" --good-clients {args.good_clients} --good-seconds {args.good_seconds:g}`).",
            "",
            f"Memory budget with the default tuning: {budget} MiB resident (app.auth.hashing.memory_budget_mib);"
            f" the `after` bursts peaked at {', '.join(f'{p:.0f}' for p in peaks)} MiB: "
            + ("within it." if within else "**over it**."),
            "",
            f"| API | RSS before the burst (MiB) | peak RSS, {args.parallel} parallel failed logins (MiB) |"
            " p50 / p99 of the burst (ms) | answers | good logins/s |"
            " good-login p99 (ms) | peak RSS, good logins (MiB) | good logins refused |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    print(table)
    if args.markdown:
        write_markdown(args.markdown, table)
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
