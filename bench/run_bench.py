"""EcoMind's secret layer against the anchors: cold start, hot path, steady state, memory, fleet start, API;
cold start with the primary region down (bench/outage.py); start-up costs of the CLI and the API
(bench/startup.py); what our layer holds beyond Powertools (bench/profile_memory.py); what the
metrics cost the API (bench/metrics_overhead.py).

Usage: python bench/run_bench.py [--delay 0.02] [--trials 5] [--startup-trials 7]
       [--sections anchors,outage,startup,metrics] [--markdown docs/benchmarks.md]

Starts moto's server and a loopback proxy in front of it that adds a fixed delay
per request (the AWS round trip), counts requests (per region too), and (for the
fleet start) enforces scaled-down Secrets Manager quotas, or plays a regional
outage. Everything runs on loopback, is bounded, and is stopped at the end. Every
figure is measured in this run, except the anchors' steady-state calls, which are
computed from their documented default TTLs (marked as such).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import timeit
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
sys.path[:0] = [str(BENCH), str(ROOT / "api")]

import boto3  # noqa: E402
import outage  # noqa: E402
import profile_memory  # noqa: E402
import startup  # noqa: E402
from approaches import APPROACHES, LABELS, names  # noqa: E402

from tests.support.awsproxy import AwsProxy  # noqa: E402
from tests.support.services import MotoServer  # noqa: E402

KS = (1, 8, 20, 40)
REGION = "us-east-1"
PRICE_PER_10K = 0.05
QUOTA = {"GetSecretValue": 10_000, "BatchGetSecretValue": 100}
FLEET_QUOTA = {"GetSecretValue": 1_000, "BatchGetSecretValue": 10}  # scaled down 10x together


@dataclass
class Env:
    moto: MotoServer
    proxy: AwsProxy

    def worker_env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        return {
            **keep,
            "AWS_ENDPOINT_URL": self.proxy.url,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
        }


def start(delay: float) -> Env:
    moto = MotoServer().start()
    client = boto3.client(
        "secretsmanager", region_name=REGION, endpoint_url=moto.url, aws_access_key_id="b", aws_secret_access_key="b"
    )
    for i, name in enumerate(names(max(KS))):
        # Replicated, so a cold start can fail over when the primary region is down (bench/outage.py).
        client.create_secret(
            Name=name,
            SecretString=json.dumps({f"v{i}": f"value-{i}"}),
            AddReplicaRegions=[{"Region": outage.REPLICA}],
        )
    proxy = AwsProxy(moto.url, delay=delay).start()
    os.environ.update(Env(moto, proxy).worker_env())
    return Env(moto, proxy)


# -- 1 + 4. cold start and memory --------------------------------------------------------


def cold_start(env: Env, trials: int) -> dict[str, dict[int, dict[str, Any]]]:
    results: dict[str, dict[int, dict[str, Any]]] = {}
    for approach in APPROACHES:
        results[approach] = {}
        for k in KS:
            times, requests, memory = [], [], []
            for _ in range(trials):
                env.proxy.reset()
                out = subprocess.run(
                    [sys.executable, str(BENCH / "coldstart_worker.py"), approach, str(k)],
                    env=env.worker_env(),
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=True,
                )
                data = json.loads(out.stdout)
                times.append(data["ms"])
                memory.append(data["rss_added_kb"])
                requests.append(env.proxy.total)
            results[approach][k] = {
                "median_ms": statistics.median(times),
                "requests": statistics.median(requests),
                "rss_added_mb": statistics.median(memory) / 1024,
            }
            print(
                f"cold start {approach:32} K={k:2}: {results[approach][k]['median_ms']:7.1f} ms, "
                f"{results[approach][k]['requests']:.0f} requests",
                file=sys.stderr,
            )
    return results


# -- 2. hot path -----------------------------------------------------------------------------


def per_read_ns(stmt: Any, number: int = 200_000) -> float:
    return min(timeit.Timer(stmt).repeat(5, number=number)) / number * 1e9


def hot_path(env: Env) -> dict[str, Any]:
    from dataclasses import dataclass as dc

    from aws_lambda_powertools.utilities import parameters
    from aws_secretsmanager_caching import SecretCache, SecretCacheConfig
    from pydantic_settings import AWSSecretsManagerSettingsSource, BaseSettings

    from app.secrets.refs import AwsRef
    from app.secrets.store import SecretStore
    from app.settings.loading import load_settings

    @dc(frozen=True)
    class Frozen:
        jwt_secret: str

    frozen = Frozen("x")
    store = SecretStore(region=REGION, endpoint_url=env.proxy.url)
    ref = AwsRef("bench/s0")
    store.get(ref)
    settings = load_settings(
        {**env.worker_env(), "DATABASE_URL": "postgresql://u:p@h/db", "JWT_SECRET": "aws-secretsmanager:bench/s1"},
        env_file=None,
    )

    class PS(BaseSettings):
        v0: str

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: Any,
            env_settings: Any,
            dotenv_settings: Any,
            file_secret_settings: Any,
        ) -> tuple[Any, ...]:
            return (AWSSecretsManagerSettingsSource(settings_cls, secret_id="bench/s0"),)

    live = settings.secret("JWT_SECRET")
    ps = PS()  # type: ignore[call-arg]
    cache = SecretCache(config=SecretCacheConfig(), client=boto3.client("secretsmanager"))
    cache.get_secret_string("bench/s0")
    parameters.get_secret("bench/s0")
    env.proxy.reset()
    figures = {
        "floor: frozen dataclass attribute": per_read_ns(lambda: frozen.jwt_secret),
        "ours: settings attribute (a non-secret field)": per_read_ns(lambda: settings.access_token_expire_minutes),
        "ours: SecretStore.get (cached)": per_read_ns(lambda: store.get(ref)),
        "ours: settings.secret(...).get() (cached, follows rotation)": per_read_ns(live.get),
        "pydantic-settings: attribute": per_read_ns(lambda: ps.v0),
        "aws-secretsmanager-caching: get_secret_string (cached)": per_read_ns(
            lambda: cache.get_secret_string("bench/s0"), 20_000
        ),
        "Powertools: get_secret (cached)": per_read_ns(lambda: parameters.get_secret("bench/s0"), 20_000),
    }
    figures["requests during the reads above"] = env.proxy.total
    store.close()
    settings.close()
    return figures


# -- 3. steady state -------------------------------------------------------------------------


def steady_state(env: Env) -> dict[str, dict[int, float]]:
    """Calls per process-hour, one read per second per secret, each library's default TTL."""
    from app.secrets.refs import AwsRef
    from app.secrets.store import SecretStore

    measured: dict[int, float] = {}
    for k in KS:
        store = SecretStore(region=REGION, endpoint_url=env.proxy.url)  # default TTL: 300 s
        now = [0.0]
        store.clock = lambda now=now: now[0]
        refs = [AwsRef(n) for n in names(k)]
        store.load(refs)
        env.proxy.reset()
        for second in range(1, 3601):
            now[0] = float(second)
            # What a read that finds the TTL passed wakes; run here, in step with the clock.
            store.refresh_due()
        measured[k] = env.proxy.total
        store.close()
    from aws_lambda_powertools.utilities.parameters.base import DEFAULT_MAX_AGE_SECS as MAX_AGE
    from aws_secretsmanager_caching import SecretCacheConfig

    caching_interval = SecretCacheConfig().secret_refresh_interval
    return {
        "ours (measured)": measured,
        "naive boto3 (every read)": {k: 3600.0 * k for k in KS},
        "pydantic-settings (never refreshes)": {k: 0.0 for k in KS},
        # DescribeSecret per refresh, GetSecretValue too when the version changed: 1 to 2 each.
        "aws-secretsmanager-caching (computed, 1-2 per refresh)": {k: 3600 / caching_interval * k * 1.5 for k in KS},
        "Powertools get_secret (computed)": {k: 3600 / int(MAX_AGE) * k for k in KS},
        "Powertools get_secrets_by_name (computed)": {k: 3600 / int(MAX_AGE) * math.ceil(k / 20) for k in KS},
    }


# -- 5. fleet start --------------------------------------------------------------------------


FLEET = ("ours", "naive_boto3", "powertools_get_secret", "powertools_get_secrets_by_name")


def fleet_start(env: Env, starts: int, k: int) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for approach in FLEET:
        env.proxy.reset()
        env.proxy.limits = dict(FLEET_QUOTA)
        time.sleep(1.1)  # full buckets for every approach
        env.proxy.reset()
        out = subprocess.run(
            [sys.executable, str(BENCH / "fleet_worker.py"), approach, str(starts), str(k)],
            env=env.worker_env(),
            capture_output=True,
            text=True,
            timeout=900,
            check=True,
        )
        data = json.loads(out.stdout)
        results[LABELS[approach]] = {
            "failed": data["failed"],
            "errors": data["errors"],
            "seconds_until_all_ready": data["seconds"] if data["seconds"] is not None else float("nan"),
            "calls": env.proxy.total,
            "throttled": sum(env.proxy.throttled.values()),
        }
        env.proxy.limits = {}
        print(f"fleet start {approach}: {results[LABELS[approach]]}", file=sys.stderr)
    return results


# -- report ---------------------------------------------------------------------------------


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def markdown(cold: Any, hot: Any, steady: Any, fleet: Any, api: Any, args: argparse.Namespace, png: str) -> str:
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"moto behind a loopback proxy adding {args.delay * 1000:.0f} ms per request; median of {args.trials} "
        "cold starts per cell, each in a fresh process (imports excluded from the time).",
        "",
        f"Command: `make bench` (`python bench/run_bench.py --delay {args.delay} --trials {args.trials}`)",
        "",
        "### 1. Cold start: nothing constructed to all K values in hand",
        "",
        "| approach | K=1 | K=8 | K=20 | K=40 | requests (K=1/8/20/40) |",
        "|---|---|---|---|---|---|",
    ]
    for a in APPROACHES:
        cells = [f"{cold[a][k]['median_ms']:.0f} ms" for k in KS]
        reqs = "/".join(f"{cold[a][k]['requests']:.0f}" for k in KS)
        lines.append(f"| {LABELS[a]} | {' | '.join(cells)} | {reqs} |")
    lines += [
        "",
        "Ratios, ours / anchor (below 1 is faster):",
        "",
        "| anchor | K=1 | K=8 | K=20 | K=40 |",
        "|---|---|---|---|---|",
    ]
    for a in APPROACHES[1:]:
        cells = [ratio(cold["ours"][k]["median_ms"], cold[a][k]["median_ms"]) for k in KS]
        lines.append(f"| {LABELS[a]} | {' | '.join(cells)} |")
    lines += ["", f"![cold start vs K]({png})", "", "### 2. Hot path: one read of a cached value", ""]
    lines += ["| read | ns | ratio to the floor |", "|---|---|---|"]
    floor = hot["floor: frozen dataclass attribute"]
    for name, ns in hot.items():
        if name.startswith("requests"):
            continue
        lines.append(f"| {name} | {ns:,.0f} | {ns / floor:.1f}x |")
    pt = hot["Powertools: get_secret (cached)"]
    lines += [
        "",
        f"Ours cached store read / Powertools cached get_secret: "
        f"{hot['ours: SecretStore.get (cached)'] / pt:.3f}. Requests during the reads: "
        f"{hot['requests during the reads above']}.",
        "",
        "### 3. Steady state: Secrets Manager calls per process-hour (one read per second per secret)",
        "",
        "| approach | K=1 | K=8 | K=20 | K=40 |",
        "|---|---|---|---|---|",
    ]
    for name, row in steady.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[k]:,.0f}" for k in KS) + " |")
    lines += [
        "",
        "At fleet scale, K=8 (calls per second against the quota; cost per month at "
        f"${PRICE_PER_10K} per 10,000 calls):",
        "",
        "| approach | 100 tasks | 1,000 tasks |",
        "|---|---|---|",
    ]
    for name, row in steady.items():
        cells = []
        for tasks in (100, 1000):
            per_hour = row[8] * tasks
            quota = QUOTA["BatchGetSecretValue"] if name.startswith("ours") else QUOTA["GetSecretValue"]
            cells.append(
                f"{per_hour / 3600:,.2f}/s ({per_hour / 3600 / quota:.2%} of quota), "
                f"${per_hour * 730 / 10_000 * PRICE_PER_10K:,.2f}/month"
            )
        lines.append(f"| {name} | {' | '.join(cells)} |")
    lines += [
        "",
        "### 4. Memory: RSS added by importing and resolving K=8",
        "",
        "| approach | MB | ours / it |",
        "|---|---|---|",
    ]
    ours_mb = cold["ours"][8]["rss_added_mb"]
    for a in APPROACHES:
        lines.append(
            f"| {LABELS[a]} | {cold[a][8]['rss_added_mb']:.1f} | {ratio(ours_mb, cold[a][8]['rss_added_mb'])} |"
        )
    lines += [
        "",
        f"### 5. Fleet start: {args.fleet} cold starts at once, K=8, quotas scaled down "
        f"(BatchGetSecretValue {FLEET_QUOTA['BatchGetSecretValue']}/s, "
        f"GetSecretValue {FLEET_QUOTA['GetSecretValue']}/s)",
        "",
        "| approach | failed starts | seconds until all ready | calls | throttled answers |",
        "|---|---|---|---|---|",
    ]
    for label, r in fleet.items():
        errors = f" ({', '.join(r['errors'])})" if r["errors"] else ""
        seconds = r["seconds_until_all_ready"]
        lines.append(f"| {label} | {r['failed']}{errors} | {seconds:.1f} | {r['calls']} | {r['throttled']} |")
    if api:
        ours_rps, ours_p99 = api["ours"]
        plain_rps, plain_p99 = api["plain"]
        lines += [
            "",
            "### 6. The whole API: authenticated read (GET /v1/auth/me), 8 clients on loopback",
            "",
            "| settings | requests/s | p99 ms |",
            "|---|---|---|",
            f"| ours (Secrets Manager references, store, rotation-aware) | {ours_rps:.0f} | {ours_p99:.1f} |",
            f"| plain values | {plain_rps:.0f} | {plain_p99:.1f} |",
            "",
            f"Overhead of the layer: {(1 - ours_rps / plain_rps):.1%} of requests/s "
            f"(`python bench/api_overhead.py`, run by `make bench`).",
        ]
    return "\n".join(lines)


def plot(cold: Any, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for a in APPROACHES:
        ax.plot(KS, [cold[a][k]["median_ms"] for k in KS], marker="o", label=LABELS[a])
    ax.set_xlabel("secrets resolved at start (K)")
    ax.set_ylabel("cold start, median ms")
    ax.set_xticks(KS)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_section(
    path: Path, body: str, name: str = "anchors", title: str = "The secret layer against the anchors"
) -> None:
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{body}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        marker = "## Rotation under load"
        head = f"## {title}\n\n" + block + "\n\n"
        text = text.replace(marker, head + marker, 1) if marker in text else text + "\n" + head
    path.write_text(text)


def profile_section(env: Env, k: int = 8, top: int = 8) -> str:
    against = "powertools_get_secrets_by_name"
    data = profile_memory.profile(env.worker_env(), k, ("ours", against))
    lines = [
        f"What ours holds beyond {LABELS[against]} after importing and resolving K={k}, one fresh process each "
        "(`python bench/profile_memory.py` prints the whole of it; Python memory is measured in a second "
        "process, under tracemalloc):",
        "",
        *profile_memory.render(profile_memory.summary(data, against, top), against),
    ]
    return "\n".join(lines)


def outage_startup_markdown(out: Any, start: Any, profile: str | None, args: argparse.Namespace) -> str:
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores, Python {platform.python_version()}, "
        "loopback only.",
        "",
        f"Command: `make bench` (`python bench/run_bench.py --delay {args.delay} --trials {args.trials} "
        f"--startup-trials {args.startup_trials}`)",
    ]
    if out is not None:
        lines += ["", "### 7. Cold start with the primary region down (issue 13)", ""]
        lines.append(outage.markdown(out, args.trials, args.delay))
    if start is not None:
        lines += ["", "### 8. Start-up: the CLI, the API and memory against the least that does the job (issue 14)", ""]
        lines.append(startup.markdown(start, args.startup_trials, args.delay))
    if profile is not None:
        lines += ["", "### 9. Memory: what our layer holds beyond Powertools", "", profile]
    return "\n".join(lines)


def metrics_section() -> str:
    import metrics_overhead

    result = metrics_overhead.run(seconds=8, clients=8, rounds=8, scrape_every=1.0)
    return "\n".join(
        [
            f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores, Python {platform.python_version()}, "
            "loopback only.",
            "",
            "Command: `make bench` (`python bench/run_bench.py --sections metrics` runs this figure alone; "
            "`python bench/metrics_overhead.py` prints it)",
            "",
            "### 10. Metrics overhead (issue 15)",
            "",
            metrics_overhead.markdown(result),
        ]
    )


SECTIONS = ("anchors", "outage", "startup", "metrics")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--delay", type=float, default=0.02, help="seconds added per request (default 0.02)")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--fleet", type=int, default=200, help="cold starts at once in the fleet start")
    parser.add_argument("--markdown", type=Path)
    parser.add_argument(
        "--skip-api",
        action="store_true",
        help="skip figures 6, 8.3 and 10 (they start PostgreSQL, Redis and the API)",
    )
    parser.add_argument("--ks", default="1,8,20,40", help="comma-separated K values (default 1,8,20,40)")
    parser.add_argument("--startup-trials", type=int, default=7, help="trials per figure of bench/startup.py")
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help="what to run: anchors (figures 1-6), outage (7), startup (8 and 9), metrics (10); default all",
    )
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    if sections - set(SECTIONS):
        parser.error(f"unknown section(s) {', '.join(sorted(sections - set(SECTIONS)))}; known: {', '.join(SECTIONS)}")
    global KS
    KS = tuple(int(k) for k in args.ks.split(","))
    out = begun = profile = None
    if sections & {"anchors", "outage", "startup"}:  # the metrics figure brings its own stacks
        env = start(args.delay)
        try:
            if "anchors" in sections:
                cold = cold_start(env, args.trials)
                hot = hot_path(env)
                steady = steady_state(env)
                fleet = fleet_start(env, args.fleet, 8)
            if "outage" in sections:
                out = outage.run(env.proxy, env.worker_env(), args.trials)
            if "startup" in sections:
                begun = startup.run(env.moto.url, env.proxy, env.worker_env(), args.startup_trials, args.skip_api)
                profile = profile_section(env)
        finally:
            env.proxy.stop()
            env.moto.stop()
    if out is not None or begun is not None:
        body = outage_startup_markdown(out, begun, profile, args)
        print(body)
        if args.markdown:
            write_section(args.markdown, body, "startup", "Regional outage and start-up costs")
    if "anchors" in sections:
        api = None
        if not args.skip_api:
            import api_overhead

            for name in [n for n in os.environ if n.startswith("AWS_")]:
                del os.environ[name]
            api = api_overhead.run(seconds=15, clients=8, rounds=2)
        png = "benchmarks-cold-start.png"
        body = markdown(cold, hot, steady, fleet, api, args, png)
        print(body)
        if args.markdown:
            plot(cold, args.markdown.parent / png)
            write_section(args.markdown, body)
    if "metrics" in sections and not args.skip_api:  # last: its stacks start after the others have stopped
        body = metrics_section()
        print(body)
        if args.markdown:
            write_section(args.markdown, body, "metrics", "Metrics overhead")
    return 0


if __name__ == "__main__":
    sys.exit(main())
