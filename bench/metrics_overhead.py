"""What the metrics cost the API (issue 15): requests/s with ECOMIND_METRICS=on against off.

Usage: python bench/metrics_overhead.py [--seconds 8] [--clients 8] [--rounds 8] [--scrape-every 1]

Two stacks as bench/api_overhead.py builds them (rotation_under_load.Stack: PostgreSQL,
moto, the API under uvicorn with DATABASE_URL and JWT_SECRET as Secrets Manager
references read through the store) start once, one with ECOMIND_METRICS=on and one
with off, each told its own free ECOMIND_METRICS_PORT. Each round, clients call
GET /v1/auth/me on each stack in turn for a bounded time (the order flips every round,
so drift falls on both), while a scraper, in a process of its own, fetches that
stack's /metrics every second.
Prometheus usually scrapes every 15 to 60 s: once a second is a stress case.
Reported per side: requests/s and p99 (medians of the rounds), and the API process's
CPU time per request, which other work on the machine moves less than requests/s.

The scraper proves both sides are what they claim: against "on" every scrape must
answer 200 holding a sample of ecomind_secret_since_refresh_seconds (a value the
collector computed, not only its HELP line), against "off" nothing
listens on the port. Either failing stops the bench rather than report a vacuous
comparison.

What differs between the two: the listener thread, and the collector that computes
freshness and reads the counters when scraped. What does not: the counters themselves
(app.secrets.stats counts in both modes, and GET /v1/auth/me touches none except for
a Secrets Manager refresh every SECRETS_CACHE_TTL), and the X-Request-ID middleware.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
from api_overhead import load, login
from rotation_under_load import Stack

from app.data.local import free_port
from app.telemetry import SINCE_REFRESH

GOAL = 0.03  # at most this share of requests/s lost with the metrics on
MODES = ("on", "off")
SAMPLE = re.compile(rf'^{SINCE_REFRESH.name}{{variable="[A-Z_]+"}} [0-9.e+-]+$', re.MULTILINE)
WARMUP_SECONDS = 2.0


@dataclass
class Scrapes:
    served: int = 0  # 200 holding a sample of ecomind_secret_since_refresh_seconds
    refused: int = 0  # nothing listening
    other: list[str] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)

    @property
    def attempts(self) -> int:
        return self.served + self.refused + len(self.other)


def scrape(url: str, every: float, stop: threading.Event) -> Scrapes:
    """Fetch ``url`` every ``every`` seconds until ``stop`` is set; count what answered."""
    scrapes = Scrapes()
    with httpx.Client(timeout=5) as http:
        while True:
            started = time.perf_counter()
            try:
                r = http.get(url)
            except httpx.ConnectError:
                scrapes.refused += 1
            except httpx.HTTPError as exc:
                scrapes.other.append(type(exc).__name__)
            else:
                if r.status_code == 200 and SAMPLE.search(r.text):
                    scrapes.served += 1
                    scrapes.ms.append((time.perf_counter() - started) * 1000)
                else:
                    scrapes.other.append(f"HTTP {r.status_code}")
            if stop.wait(max(0.0, every - (time.perf_counter() - started))):
                return scrapes


class Scraper:
    """:func:`scrape` in a process of its own, as Prometheus is, from ``with`` to its end.

    In the load generator's process its work would take the GIL from the clients and
    count against "on"."""

    def __init__(self, url: str, every: float, into: Scrapes) -> None:
        self.url, self.every, self.into = url, every, into

    def __enter__(self) -> Scraper:
        command = [sys.executable, __file__, "--scrape", self.url, "--scrape-every", str(self.every)]
        self._child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._child.stdout is not None
        if self._child.stdout.readline().strip() != "ready":  # imports done: they cost nothing in the round
            self._child.kill()
            raise RuntimeError("the scraper did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            out, _ = self._child.communicate("", timeout=30)  # its stdin closed: it stops and reports
        except subprocess.TimeoutExpired:
            self._child.kill()
            self._child.communicate()
            raise
        got = Scrapes(**json.loads(out))
        self.into.served += got.served
        self.into.refused += got.refused
        self.into.other += got.other
        self.into.ms += got.ms


def _scraper_child(url: str, every: float) -> int:
    stop = threading.Event()
    result: list[Scrapes] = []
    thread = threading.Thread(target=lambda: result.append(scrape(url, every, stop)), daemon=True)
    thread.start()
    print("ready", flush=True)
    sys.stdin.read()
    stop.set()
    thread.join(timeout=30)
    print(json.dumps(asdict(result[0])), flush=True)
    return 0


@dataclass
class Mode:
    rps: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)  # the API process's CPU time per request
    scrapes: Scrapes = field(default_factory=Scrapes)

    @property
    def median_rps(self) -> float:
        return statistics.median(self.rps)

    @property
    def median_p99(self) -> float:
        return statistics.median(self.p99)

    @property
    def median_cpu_ms(self) -> float:
        return statistics.median(self.cpu_ms)


@dataclass
class Result:
    seconds: float
    clients: int
    rounds: int
    scrape_every: float
    modes: dict[str, Mode]
    load_average: tuple[float, float]  # 1-minute load average before the stacks started, and at the end

    @property
    def ratio(self) -> float:
        return self.modes["on"].median_rps / self.modes["off"].median_rps

    @property
    def round_ratios(self) -> list[float]:
        return [on / off for on, off in zip(self.modes["on"].rps, self.modes["off"].rps, strict=True)]

    @property
    def met(self) -> bool:
        return 1 - self.ratio < GOAL


def check(modes: dict[str, Mode]) -> None:
    """Raise unless "on" served its metrics and "off" served none: otherwise the comparison means nothing."""
    on, off = modes["on"].scrapes, modes["off"].scrapes
    if on.served == 0 or on.refused:
        raise RuntimeError(f"the 'on' stack did not serve its metrics: {on.served} served, {on.refused} refused")
    if off.served or off.other:
        raise RuntimeError(f"the 'off' stack answered on its metrics port: {off.served} served, {off.other[:5]}")


def run(seconds: float = 8, clients: int = 8, rounds: int = 8, scrape_every: float = 1.0) -> Result:
    load_before = _load_average()
    ports = {mode: free_port() for mode in MODES}
    stacks: dict[str, Stack] = {}
    try:
        for mode in MODES:
            env = {"ECOMIND_METRICS": mode, "ECOMIND_METRICS_PORT": str(ports[mode])}
            stacks[mode] = Stack(env=env).start("api_app:app_factory")
        tokens = {mode: login(stacks[mode].url) for mode in MODES}
        for mode in MODES:
            load(stacks[mode].url, WARMUP_SECONDS, clients, tokens[mode])  # pools filled, caches warm; not counted
        modes = {mode: Mode() for mode in MODES}
        for n in range(rounds):
            for mode in MODES if n % 2 == 0 else MODES[::-1]:
                api = stacks[mode].api
                assert api is not None
                cpu = cpu_seconds(api.pid)
                with Scraper(f"http://127.0.0.1:{ports[mode]}/metrics", scrape_every, modes[mode].scrapes):
                    done = load(stacks[mode].url, seconds, clients, tokens[mode])
                cpu_ms = (cpu_seconds(api.pid) - cpu) * 1000 / done.requests
                modes[mode].rps.append(done.per_second)
                modes[mode].p99.append(done.p99_ms)
                modes[mode].cpu_ms.append(cpu_ms)
                print(
                    f"round {n + 1} metrics {mode:3}: {done.per_second:.0f} requests/s, p99 {done.p99_ms:.1f} ms, "
                    f"API CPU {cpu_ms:.2f} ms per request",
                    file=sys.stderr,
                )
    finally:
        for stack in stacks.values():
            stack.close()
    check(modes)
    return Result(seconds, clients, rounds, scrape_every, modes, (load_before, _load_average()))


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid``, all its threads (Linux's /proc; NaN elsewhere)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return float("nan")
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def _load_average() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:  # not on every platform
        return float("nan")


def markdown(result: Result) -> str:
    on, off = result.modes["on"], result.modes["off"]
    ratios = result.round_ratios
    scrape_ms = statistics.median(on.scrapes.ms) if on.scrapes.ms else float("nan")
    lines = [
        f"GET /v1/auth/me, {result.clients} clients on loopback, {result.rounds} rounds of {result.seconds:g} s per "
        "side, the order of on and off flipped every round; both stacks started once, as figure 6's "
        "(Secrets Manager references in moto, PostgreSQL, the store). With the metrics on, /metrics is "
        f"scraped every {result.scrape_every:g} s (Prometheus usually scrapes every 15-60 s: a stress case); "
        'the same scraper runs against the "off" stack, whose port nothing answers. What differs: the listener '
        "thread, and the collector computing freshness and reading the counters at each scrape; the counters "
        "count in both modes (GET /v1/auth/me touches none but the Secrets Manager calls of a refresh every "
        "SECRETS_CACHE_TTL), and the X-Request-ID middleware is always on. The scraper runs in a process of its "
        "own, as Prometheus does. API CPU: the uvicorn process's user "
        "and system time over the round, divided by the requests served (scrapes included, PostgreSQL not). "
        f"Load average (1 min) before the stacks started: {result.load_average[0]:.2f}; at the end, this "
        f"figure's own processes included: {result.load_average[1]:.2f}.",
        "",
        "| ECOMIND_METRICS | requests/s (median) | range | p99 ms (median) | API CPU ms per request (median) |"
        " scrapes answered with the metrics | scrapes refused | other scrape answers |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, mode in ((f"on, scraped every {result.scrape_every:g} s", on), ("off", off)):
        s = mode.scrapes
        lines.append(
            f"| {label} | {mode.median_rps:.0f} | {min(mode.rps):.0f}-{max(mode.rps):.0f} | {mode.median_p99:.1f} |"
            f" {mode.median_cpu_ms:.2f} | {s.served} of {s.attempts} | {s.refused} | {len(s.other)} |"
        )
    verdict = "met" if result.met else "**missed**"
    ahead = " (below zero: on was ahead, within the rounds' noise)" if result.ratio > 1 else ""
    lines += [
        "",
        f"Ratio on / off (requests/s, medians, same run): {result.ratio:.3f}, an overhead of "
        f"{1 - result.ratio:.1%}{ahead}; goal under {GOAL:.0%}: {verdict}. Round by round (on / off of the same "
        f"round): median {statistics.median(ratios):.3f}, range {min(ratios):.3f}-{max(ratios):.3f}. "
        f"API CPU per request on / off: {on.median_cpu_ms / off.median_cpu_ms:.3f}. "
        f"p99 on / off: {on.median_p99 / off.median_p99:.2f}x. A scrape took {scrape_ms:.1f} ms (median, seen "
        "by the scraper, so no less than the time the API spent on it): at one scrape every "
        f"{result.scrape_every:g} s, the API spends at most {scrape_ms / (result.scrape_every * 1000):.1%} of each "
        "second serving them.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8, help="seconds of load per side and round")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--scrape-every", type=float, default=1.0, help="seconds between scrapes (default 1)")
    parser.add_argument("--scrape", metavar="URL", help=argparse.SUPPRESS)  # the scraper's own process
    args = parser.parse_args()
    if args.scrape:
        return _scraper_child(args.scrape, args.scrape_every)
    print(markdown(run(args.seconds, args.clients, args.rounds, args.scrape_every)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
