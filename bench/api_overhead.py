"""What the secret layer costs the API: an authenticated read, our layer vs plain settings.

Usage: python bench/api_overhead.py [--seconds 15] [--clients 8] [--rounds 2]

Two identical stacks on loopback (PostgreSQL, moto, uvicorn with the default pool):
one reads DATABASE_URL and JWT_SECRET through Secrets Manager references (the
store, rotation-aware connections and JWT keys), the other gets them as plain
values. Clients log in once, then call GET /v1/auth/me (JWT verification with the
current and previous keys, revocation check, one query) for a bounded time.
Rounds alternate the two to spread drift. Reports requests/s and p99.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from dataclasses import dataclass

import httpx
from rotation_under_load import OWNER_PASSWORD, Stack, _percentile


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float  # first client started to last client stopped
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def login(url: str) -> str:
    with httpx.Client(base_url=url, timeout=30) as http:
        r = http.post("/v1/auth/login", json={"email": "owner@bench.io", "password": OWNER_PASSWORD})
        return str(r.raise_for_status().json()["access_token"])


def load(url: str, seconds: float, clients: int, token: str | None = None) -> Load:
    """``clients`` threads call GET /v1/auth/me for ``seconds`` (logged in first unless given a token).

    A failed request raises."""
    token = token or login(url)
    latencies: list[float] = []
    failures: list[int] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as http:
            while not stop.is_set():
                started = time.perf_counter()
                r = http.get("/v1/auth/me")
                latencies.append(time.perf_counter() - started)
                if r.status_code != 200:
                    failures.append(r.status_code)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    elapsed = time.perf_counter() - began
    if failures:
        raise RuntimeError(f"{len(failures)} failed requests: {sorted(set(failures))}")
    return Load(len(latencies), elapsed, _percentile([x * 1000 for x in latencies], 99))


def measure(plain: bool, seconds: float, clients: int) -> tuple[float, float]:
    stack = Stack(plain=plain).start("api_app:app_factory")
    try:
        result = load(stack.url, seconds, clients)
        return result.per_second, result.p99_ms
    finally:
        stack.close()


def run(seconds: float, clients: int, rounds: int) -> dict[str, tuple[float, float]]:
    samples: dict[str, list[tuple[float, float]]] = {"ours": [], "plain": []}
    for _ in range(rounds):
        for label in ("ours", "plain"):
            samples[label].append(measure(label == "plain", seconds, clients))
    return {
        label: (statistics.median(r for r, _ in rows), statistics.median(p for _, p in rows))
        for label, rows in samples.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    result = run(args.seconds, args.clients, args.rounds)
    for label, (rps, p99) in result.items():
        print(f"{label}: {rps:.0f} requests/s, p99 {p99:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
