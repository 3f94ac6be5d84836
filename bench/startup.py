"""What starting costs, whole processes against the least that does the same job (issue 14).

Run by ``bench/run_bench.py`` against its moto and proxy (the same delay per request
as every other figure); each pair of processes alternates its order from one trial to
the next, and each figure is the median of ``trials``:

1. ``ecomind run --environment staging -- true`` (two references, the staging
   defaults DATABASE_URL -> ecomind/staging/database and JWT_SECRET -> ecomind/staging/jwt)
   against ``bench/bare_run.py``: one boto3 client, the same single
   ``BatchGetSecretValue``, then ``exec true``. Timed: spawn to exit, by the parent.
2. ``ecomind --help`` against ``python -c pass`` (the same interpreter). Spawn to exit.
3. The API, spawn of ``uvicorn app.asgi:app`` to the first ``/ready`` 200 (polled every
   5 ms on loopback), with DATABASE_URL, JWT_SECRET and REDIS_URL as references to
   secrets in moto and a real PostgreSQL (migrated) and Redis; against
   ``uvicorn powertools_app:app`` (bench/powertools_app.py: the same API, its three
   secrets fetched with Powertools' ``get_secrets_by_name`` before the app is built).
   Both get the identical environment.
4. Memory added by importing and resolving K=8 secrets in a fresh process
   (bench/coldstart_worker.py): ours against Powertools ``get_secrets_by_name`` and
   aws-secretsmanager-caching; the peak (VmHWM) and the resident memory at the end.
"""

from __future__ import annotations

import http.client
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
ECOMIND = str(Path(sys.executable).with_name("ecomind"))

from approaches import LABELS  # noqa: E402

from app.data.local import LocalPostgres, LocalRedis, ensure_role_and_database, free_port, terminate  # noqa: E402
from tests.support.awsproxy import AwsProxy  # noqa: E402

GOALS = {"cli_run": 1.2, "cli_help_seconds": 0.15, "cli_help_ratio": 6.0, "api_ready": 0.8, "memory": 1.0}
STAGING_SECRETS = {"DATABASE_URL": "ecomind/staging/database", "JWT_SECRET": "ecomind/staging/jwt"}
API_SECRETS = {"DATABASE_URL": "bench/api/database", "JWT_SECRET": "bench/api/jwt", "REDIS_URL": "bench/api/redis"}
MEMORY_APPROACHES = ("ours", "powertools_get_secrets_by_name", "secretsmanager_caching")


@dataclass
class Figure:
    """Seconds (or KiB) per trial of each contender, and the requests each made per trial."""

    samples: dict[str, list[float]] = field(default_factory=dict)
    requests: dict[str, list[int]] = field(default_factory=dict)

    def add(self, name: str, value: float, requests: int = 0) -> None:
        self.samples.setdefault(name, []).append(value)
        self.requests.setdefault(name, []).append(requests)

    def median(self, name: str) -> float:
        return statistics.median(self.samples[name])

    def spread(self, name: str) -> tuple[float, float]:
        return min(self.samples[name]), max(self.samples[name])

    def calls(self, name: str) -> float:
        return statistics.median(self.requests[name])


def alternate(contenders: dict[str, Callable[[], tuple[float, int]]], trials: int, figure: Figure) -> Figure:
    """Each trial runs every contender once, the order rotated from one trial to the next."""
    names = list(contenders)
    for trial in range(trials):
        shift = trial % len(names)
        for name in names[shift:] + names[:shift]:
            value, requests = contenders[name]()
            figure.add(name, value, requests)
    return figure


def _process(cmd: list[str], env: dict[str, str], cwd: Path, proxy: AwsProxy) -> tuple[float, int]:
    proxy.reset()
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])}... exited {done.returncode}: {done.stderr.decode()[-400:]}")
    return elapsed, proxy.total


# -- 1 and 2: the CLI -----------------------------------------------------------------------


def cli(moto_url: str, proxy: AwsProxy, base_env: dict[str, str], trials: int) -> tuple[Figure, Figure]:
    sm = boto3.client(
        "secretsmanager",
        region_name="us-east-1",
        endpoint_url=moto_url,
        aws_access_key_id="b",
        aws_secret_access_key="b",
    )
    rds = {
        "engine": "postgres",
        "host": "db.internal",
        "port": 5432,
        "dbname": "ecomind",
        "username": "ecomind_app",
        "password": "Bq7-startup-" + "k" * 20,
    }
    sm.create_secret(Name=STAGING_SECRETS["DATABASE_URL"], SecretString=json.dumps(rds))
    sm.create_secret(Name=STAGING_SECRETS["JWT_SECRET"], SecretString="J" * 64)
    # Nothing of the caller's configuration: the staging defaults name both secrets.
    env = {k: v for k, v in base_env.items() if k not in ("ENVIRONMENT", "SECRETS_PREFIX", *STAGING_SECRETS)}
    bare = [sys.executable, str(BENCH / "bare_run.py"), *(f"{v}={s}" for v, s in STAGING_SECRETS.items()), "--", "true"]
    with tempfile.TemporaryDirectory(prefix="ecomind-startup-") as tmp:
        cwd = Path(tmp)  # no .env here
        run = alternate(
            {
                "ecomind run": lambda: _process(
                    [ECOMIND, "run", "--environment", "staging", "--", "true"], env, cwd, proxy
                ),
                "bare script": lambda: _process(bare, env, cwd, proxy),
            },
            trials,
            Figure(),
        )
        helps = alternate(
            {
                "ecomind --help": lambda: _process([ECOMIND, "--help"], env, cwd, proxy),
                "python -c pass": lambda: _process([sys.executable, "-c", "pass"], env, cwd, proxy),
            },
            trials,
            Figure(),
        )
    return run, helps


# -- 3: the API, start to /ready --------------------------------------------------------------


def _ready(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/ready")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def _serve_until_ready(
    target: str, app_dir: Path, env: dict[str, str], cwd: Path, proxy: AwsProxy
) -> tuple[float, int]:
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", target, "--app-dir", str(app_dir), "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--log-level", "warning"]
    log = cwd / "api.log"
    proxy.reset()
    with log.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = started + 60
            while not _ready(port):
                if proc.poll() is not None or time.perf_counter() > deadline:
                    raise RuntimeError(f"{target} never answered /ready 200: {log.read_text()[-600:]}")
                time.sleep(0.005)
            elapsed = time.perf_counter() - started
        finally:
            terminate(proc, timeout=15)
    return elapsed, proxy.total


def api(moto_url: str, proxy: AwsProxy, base_env: dict[str, str], trials: int) -> Figure:
    tmp = Path(tempfile.mkdtemp(prefix="ecomind-startup-api-"))
    tmp.chmod(0o711)  # the postgres user must traverse it to reach its data folder
    pg = LocalPostgres(tmp / "pg", free_port())
    cache = LocalRedis(free_port())
    try:
        pg.start()
        cache.start()
        password = "startup-bench-db-" + "p" * 16
        ensure_role_and_database(pg.superuser_dsn(), user="ecomind", password=password, dbname="ecomind")
        plain = {
            "DATABASE_URL": f"postgresql://ecomind:{password}@127.0.0.1:{pg.port}/ecomind",
            "JWT_SECRET": "startup-bench-jwt-" + "s" * 40,
            "REDIS_URL": f"redis://127.0.0.1:{cache.port}/0",
        }
        sm = boto3.client(
            "secretsmanager",
            region_name="us-east-1",
            endpoint_url=moto_url,
            aws_access_key_id="b",
            aws_secret_access_key="b",
        )
        for variable, name in API_SECRETS.items():
            sm.create_secret(Name=name, SecretString=plain[variable])
        keep = {k: v for k, v in base_env.items() if not k.startswith(("ENVIRONMENT", "DATABASE_", "JWT_", "REDIS_"))}
        migrate = subprocess.run(
            [ECOMIND, "migrate"], env={**keep, **plain}, cwd=tmp, capture_output=True, text=True, timeout=120
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"migrations failed: {migrate.stderr[-400:]}")
        env = {**keep, "ENVIRONMENT": "development", **{v: f"aws-secretsmanager:{n}" for v, n in API_SECRETS.items()}}
        work = tmp / "cwd"  # no .env here
        work.mkdir()
        return alternate(
            {
                "ours (app.asgi:app)": lambda: _serve_until_ready("app.asgi:app", ROOT / "api", env, work, proxy),
                "Powertools get_secrets_by_name, then the same app": lambda: _serve_until_ready(
                    "powertools_app:app", BENCH, env, work, proxy
                ),
            },
            trials,
            Figure(),
        )
    finally:
        cache.stop()
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# -- 4: memory ----------------------------------------------------------------------------------


def memory(proxy: AwsProxy, env: dict[str, str], trials: int, k: int = 8) -> tuple[Figure, Figure]:
    peak, resident = Figure(), Figure()

    def one(approach: str) -> Callable[[], tuple[float, int]]:
        def run() -> tuple[float, int]:
            proxy.reset()
            out = subprocess.run(
                [sys.executable, str(BENCH / "coldstart_worker.py"), approach, str(k)],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            )
            data = json.loads(out.stdout)
            resident.add(approach, data["rss_added_kb"] / 1024, proxy.total)
            return data["peak_added_kb"] / 1024, proxy.total

        return run

    alternate({a: one(a) for a in MEMORY_APPROACHES}, trials, peak)
    return peak, resident


# -- all of it, and the report ------------------------------------------------------------------


def run(moto_url: str, proxy: AwsProxy, env: dict[str, str], trials: int, skip_api: bool = False) -> dict[str, Any]:
    results: dict[str, Any] = {}
    results["cli_run"], results["cli_help"] = cli(moto_url, proxy, env, trials)
    print("startup: CLI done", file=sys.stderr)
    if not skip_api:
        results["api"] = api(moto_url, proxy, env, trials)
        print("startup: API done", file=sys.stderr)
    results["memory_peak"], results["memory_resident"] = memory(proxy, env, trials)
    print("startup: memory done", file=sys.stderr)
    return results


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _row(figure: Figure, name: str, unit: str = "s") -> str:
    low, high = figure.spread(name)
    if unit == "s":
        return f"| {name} | {figure.median(name):.3f} s | {low:.3f}-{high:.3f} s | {figure.calls(name):.0f} |"
    return f"| {name} | {figure.median(name):.1f} MiB | {low:.1f}-{high:.1f} MiB | {figure.calls(name):.0f} |"


def markdown(results: dict[str, Any], trials: int, delay: float) -> str:
    lines: list[str] = []
    goals: list[str] = []
    run_fig: Figure = results["cli_run"]
    r1 = run_fig.median("ecomind run") / run_fig.median("bare script")
    goals.append(
        f"| `ecomind run --environment staging -- true` <= 1.2x the bare script | "
        f"{run_fig.median('ecomind run'):.3f} s / {run_fig.median('bare script'):.3f} s = {r1:.2f}x | "
        f"{_met(r1 <= GOALS['cli_run'])} |"
    )
    help_fig: Figure = results["cli_help"]
    h = help_fig.median("ecomind --help")
    r2 = h / help_fig.median("python -c pass")
    ok2 = h <= GOALS["cli_help_seconds"] or r2 <= GOALS["cli_help_ratio"]
    goals.append(
        f"| `ecomind --help` <= 0.15 s or <= 6x `python -c pass` | {h:.3f} s; "
        f"{h:.3f} s / {help_fig.median('python -c pass'):.3f} s = {r2:.1f}x | {_met(ok2)} |"
    )
    api_fig: Figure | None = results.get("api")
    if api_fig is not None:
        ours, pt = list(api_fig.samples)
        r3 = api_fig.median(ours) / api_fig.median(pt)
        goals.append(
            f"| API start to `/ready` 200 <= 0.8x the same app on Powertools `get_secrets_by_name` | "
            f"{api_fig.median(ours):.3f} s / {api_fig.median(pt):.3f} s = {r3:.2f}x | "
            f"{_met(r3 <= GOALS['api_ready'])} |"
        )
    peak: Figure = results["memory_peak"]
    resident: Figure = results["memory_resident"]
    r4 = peak.median("ours") / peak.median("powertools_get_secrets_by_name")
    r4b = resident.median("ours") / resident.median("powertools_get_secrets_by_name")
    goals.append(
        f"| memory added, import and resolve K=8, <= 1.0x Powertools `get_secrets_by_name` | peak "
        f"{peak.median('ours'):.1f} / {peak.median('powertools_get_secrets_by_name'):.1f} MiB = {r4:.2f}x "
        f"(resident at the end: {r4b:.2f}x) | {_met(r4 <= GOALS['memory'])} |"
    )
    lines += [
        f"Median of {trials} trials per row, each a whole fresh process; the contenders of a figure alternate "
        f"(their order rotates every trial); moto behind the proxy adding {delay * 1000:.0f} ms per request. "
        "Range: fastest and slowest trial. Requests: Secrets Manager calls per trial (median).",
        "",
        "| goal | measured | |",
        "|---|---|---|",
        *goals,
        "",
        "#### 1. `ecomind run` with two references, spawn to exit",
        "",
        "| process | median | range | requests |",
        "|---|---|---|---|",
        _row(run_fig, "ecomind run"),
        _row(run_fig, "bare script"),
        "",
        "`ecomind run --environment staging -- true`, no variable set: the staging defaults name "
        "`ecomind/staging/database` (RDS-shaped JSON) and `ecomind/staging/jwt`, read in one `BatchGetSecretValue`, "
        "checked by the staging policy, then `true` runs as a child. The bare script (`bench/bare_run.py`) builds "
        "one boto3 client, sends the same `BatchGetSecretValue` and `exec`s `true` with the two raw values in its "
        "environment.",
        "",
        "#### 2. `ecomind --help`, spawn to exit",
        "",
        "| process | median | range | requests |",
        "|---|---|---|---|",
        _row(help_fig, "ecomind --help"),
        _row(help_fig, "python -c pass"),
    ]
    if api_fig is not None:
        lines += [
            "",
            "#### 3. The API: process spawn to the first `/ready` 200",
            "",
            "| API | median | range | requests |",
            "|---|---|---|---|",
            *(_row(api_fig, name) for name in api_fig.samples),
            "",
            "Both run `uvicorn` (one process) on loopback with a migrated PostgreSQL (password auth) and Redis, "
            "DATABASE_URL, JWT_SECRET and REDIS_URL as `aws-secretsmanager:` references to plain secrets in moto, "
            "and the same environment. Ours: `app.asgi:app`, a child process resolves the three in one "
            "`BatchGetSecretValue`. Powertools: `bench/powertools_app.py` fetches the three with one "
            "`get_secrets_by_name`, puts the values into `os.environ`, then imports `app.main` and builds "
            "`create_app()`: the same API, whose settings then find plain values. `/ready` is polled every 5 ms; "
            "it answers 200 once the lifespan has run (settings, the engine's first connection, Redis) and "
            "PostgreSQL and Redis answer.",
        ]
    lines += [
        "",
        "#### 4. Memory added by importing and resolving K=8, fresh process",
        "",
        "| approach | peak added (VmHWM) | range | resident added at the end (VmRSS) | ours / it (peak) |",
        "|---|---|---|---|---|",
    ]
    ours_peak = peak.median("ours")
    for a in MEMORY_APPROACHES:
        low, high = peak.spread(a)
        lines.append(
            f"| {LABELS[a]} | {peak.median(a):.1f} MiB | {low:.1f}-{high:.1f} MiB | {resident.median(a):.1f} MiB | "
            f"{ours_peak / peak.median(a):.2f}x |"
        )
    return "\n".join(lines)
