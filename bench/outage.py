"""Cold start with the primary region down (issue 13): ours with a replica region against the anchors.

Run by ``bench/run_bench.py`` on its moto and proxy. Every secret bench/s0..s{K-1} was
created in us-east-1 with a replica in us-west-2 (``AddReplicaRegions``). Three
conditions, the same K:

* ``up``: nothing down, the normal cold start;
* ``drop``: the proxy drops every request signed for us-east-1 without an answer
  (the connection closes: an unreachable endpoint that refuses at once);
* ``5xx``: the proxy answers 503 ``InternalServiceError`` to every request signed
  for us-east-1.

Each cold start is a fresh process (bench/coldstart_worker.py ``--may-fail``),
imports before the clock; timed: nothing constructed to all K values in hand, or to
the exception that ends the start. Ours is ``SecretStore`` with
``SECRETS_REPLICA_REGIONS=us-west-2``; the anchors, as their docs show them, have no
failover and fail after botocore's retries. The approaches take turns within each
trial, so drift spreads over all of them.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from approaches import APPROACHES, LABELS

from tests.support.awsproxy import AwsProxy

BENCH = Path(__file__).resolve().parent
PRIMARY, REPLICA = "us-east-1", "us-west-2"
CONDITIONS = ("up", "drop", "5xx")


def one(proxy: AwsProxy, env: dict[str, str], approach: str, k: int) -> dict[str, Any]:
    proxy.reset()
    out = subprocess.run(
        [sys.executable, str(BENCH / "coldstart_worker.py"), approach, str(k), "--may-fail"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    data = json.loads(out.stdout)
    per_region: Counter[str] = Counter()
    for (region, _operation), n in dict(proxy.by_region).items():  # the worker has exited: no request in flight
        per_region[region] += n
    data["requests"] = dict(per_region)
    return data


def run(proxy: AwsProxy, env: dict[str, str], trials: int, k: int = 8) -> dict[str, dict[str, Any]]:
    """{condition: {approach: {"ms", "started", "requests": {region: median}, "errors"}}}"""
    env = {**env, "SECRETS_REPLICA_REGIONS": REPLICA}
    results: dict[str, dict[str, Any]] = {}
    try:
        for condition in CONDITIONS:
            proxy.down_regions = set() if condition == "up" else {PRIMARY}
            proxy.outage_mode = "drop" if condition == "up" else condition
            samples: dict[str, list[dict[str, Any]]] = {a: [] for a in APPROACHES}
            for trial in range(trials):
                shift = trial % len(APPROACHES)
                for approach in APPROACHES[shift:] + APPROACHES[:shift]:
                    samples[approach].append(one(proxy, env, approach, k))
            results[condition] = {}
            for approach, rows in samples.items():
                regions = sorted({r for row in rows for r in row["requests"]})
                results[condition][approach] = {
                    "ms": statistics.median(row["ms"] for row in rows),
                    "ms_range": (min(row["ms"] for row in rows), max(row["ms"] for row in rows)),
                    "started": sum(row["started"] for row in rows),
                    "trials": len(rows),
                    "requests": {r: statistics.median(row["requests"].get(r, 0) for row in rows) for r in regions},
                    "errors": sorted({row["error"] for row in rows if row["error"]}),
                    "rss_added_mb": statistics.median(row["rss_added_kb"] for row in rows) / 1024,
                }
                print(f"outage {condition:4} {approach:32}: {results[condition][approach]}", file=sys.stderr)
    finally:
        proxy.down_regions = set()
        proxy.outage_mode = "drop"
    return results


def _requests(requests: dict[str, float]) -> str:
    return ", ".join(f"{region} {n:g}" for region, n in requests.items()) or "0"


def _started(row: dict[str, Any]) -> str:
    if row["started"] == row["trials"]:
        return "yes"
    errors = ", ".join(row["errors"])
    if row["started"] == 0:
        return f"**no** ({errors})"
    return f"{row['started']} of {row['trials']} ({errors})"


def markdown(results: dict[str, dict[str, Any]], trials: int, delay: float, k: int = 8) -> str:
    up = results["up"]
    lines = [
        f"K={k} secrets, each created in {PRIMARY} with a replica in {REPLICA}; median of {trials} cold starts per "
        f"cell, each a fresh process (imports before the clock), the approaches taking turns; moto behind the proxy "
        f"adding {delay * 1000:.0f} ms per request that it answers. Ours: `SecretStore` with "
        f"`SECRETS_REPLICA_REGIONS={REPLICA}`; the anchors as their docs show them (no failover, botocore's "
        "default retries, 3 attempts in all).",
        "",
        "Not measured here: a region that swallows packets instead of refusing them costs each attempt its connect "
        "timeout, 2 s for ours' one-attempt probe of a region not yet known to answer "
        "(`app.secrets.regions.PROBE_TIMEOUTS`) and botocore's default 60 s for each attempt of the anchors.",
        "",
    ]
    for condition, title in (
        ("drop", f"{PRIMARY} drops every request (connection closed, no answer)"),
        ("5xx", f"{PRIMARY} answers 503 to every request"),
    ):
        rows = results[condition]
        lines += [
            f"#### {title}",
            "",
            "| approach | started | time to ready or to failure | range | requests per region | RSS added | "
            "primary up: time to ready | requests | RSS added | outage / up (time) |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for a in APPROACHES:
            r, u = rows[a], up[a]
            low, high = r["ms_range"]
            lines.append(
                f"| {LABELS[a]} | {_started(r)} | {r['ms']:.0f} ms | {low:.0f}-{high:.0f} ms | "
                f"{_requests(r['requests'])} | {r['rss_added_mb']:.1f} MiB | {u['ms']:.0f} ms | "
                f"{_requests(u['requests'])} | {u['rss_added_mb']:.1f} MiB | {r['ms'] / u['ms']:.2f}x |"
            )
        ours = rows["ours"]
        others = [a for a in APPROACHES[1:] if rows[a]["started"] < rows[a]["trials"]]
        lines += [""]
        if ours["started"] == ours["trials"]:
            lines.append(
                f"Ours started in every trial, {ours['ms']:.0f} ms, {ours['ms'] / up['ours']['ms']:.2f}x its own "
                f"cold start with the primary up and {ours['ms'] / up['powertools_get_secrets_by_name']['ms']:.2f}x "
                f"Powertools `get_secrets_by_name`'s. "
                + (
                    f"{len(others)} of {len(APPROACHES) - 1} anchors failed to start, after "
                    f"{min(rows[a]['ms'] for a in others):.0f}-{max(rows[a]['ms'] for a in others):.0f} ms."
                    if others
                    else "Every anchor started too."
                )
            )
        else:
            lines.append(f"Ours started in {ours['started']} of {ours['trials']} trials ({', '.join(ours['errors'])}).")
        lines.append("")
    return "\n".join(lines).rstrip()
