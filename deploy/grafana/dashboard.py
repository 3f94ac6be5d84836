#!/usr/bin/env python3
"""The Grafana dashboard of the secret layer, generated from the telemetry catalog.

Usage:
  deploy/grafana/dashboard.py            write deploy/grafana/dashboards/secrets.json
  deploy/grafana/dashboard.py --check    exit 1 when the committed file is not what this generates
  deploy/grafana/dashboard.py --stdout   print the dashboard instead

Every query names metrics of api/app/telemetry.py through its objects (``catalog.SINCE_REFRESH``),
never by hand, and takes units and label values from it. The panels are what an on-call
operator reads first; docs/operations.md (Dashboard) says what each one means and what to do.
The queries go to the Prometheus that scrapes the API's metrics port, picked with the
``datasource`` variable; the ``filter`` variable narrows every query by any label the scraper
adds (namespace, job, pod). Import the file in Grafana (Dashboards > New > Import) or
provision it; `make validate-deploy` checks it against Grafana's published schema.

Standard library only: it loads api/app/telemetry.py by path, with deploy/render.py's loader.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))  # deploy/render.py: the one loader of the catalog
from render import telemetry  # noqa: E402

OUTPUT = HERE / "dashboards" / "secrets.json"

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
WIDTH = 24  # Grafana's grid
# The oldest schema version whose panel JSON (timeseries, stat) is the one written here;
# a newer Grafana migrates it on load.
SCHEMA_VERSION = 39


def label_value(catalog: ModuleType, label: str, value: str) -> str:
    """A value of one of the catalog's closed label sets; a KeyError when the catalog lost it."""
    if value not in catalog.LABEL_VALUES[label]:
        raise KeyError(f"{label}={value} is not in telemetry.LABEL_VALUES")
    return value


def query(expr: str, legend: str) -> dict[str, Any]:
    return {"expr": expr, "legendFormat": legend}


def rate(metric: Any, by: str = "", matcher: str = "") -> str:
    grouping = f" by ({by}) " if by else ""
    return f"sum{grouping}(rate({metric.name}{matcher}[{RATE}]))"


def timeseries(title: str, description: str, queries: list[dict[str, Any]], unit: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "queries": queries,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "min": 0,
                "color": {"mode": "palette-classic"},
                "custom": {
                    "drawStyle": "line",
                    "lineWidth": 1,
                    "fillOpacity": 10,
                    "showPoints": "never",
                    "spanNulls": False,
                },
                "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}]},
            },
            "overrides": extra.pop("overrides", []),
        },
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        **extra,
    }


def stat(title: str, description: str, queries: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    text_mode = fields.pop("text_mode", "value_and_name")
    color_mode = fields.pop("color_mode", "background")
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "queries": queries,
        "fieldConfig": {
            "defaults": {
                "color": {"mode": "thresholds"},
                "thresholds": fields.pop(
                    "thresholds", {"mode": "absolute", "steps": [{"color": "green", "value": None}]}
                ),
                **fields,
            },
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "orientation": "auto",
            "textMode": text_mode,
            "colorMode": color_mode,
            "graphMode": "none",
            "justifyMode": "auto",
            "wideLayout": True,
            "showPercentChange": False,
            "percentChangeColorMode": "standard",
        },
    }


def red_line(name_regex: str, width: int = 2, dashed: bool = False) -> dict[str, Any]:
    properties: list[dict[str, Any]] = [
        {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
        {"id": "custom.lineWidth", "value": width},
    ]
    if dashed:
        properties.append({"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}})
    return {"matcher": {"id": "byRegexp", "options": name_regex}, "properties": properties}


def rows(c: ModuleType) -> list[tuple[str, list[tuple[int, int, dict[str, Any]]]]]:
    """(row title, [(width, height, panel)]) in reading order."""
    throttled = label_value(c, "result", "throttled")
    stale_legend = "stale threshold"
    return [
        (
            "Secrets: are the values served fresh?",
            [
                (
                    6,
                    8,
                    stat(
                        "Stale secrets",
                        f"{c.STALE.help} One tile per variable.",
                        [query(f"max by (variable) ({c.STALE.name})", "{{variable}}")],
                        thresholds={
                            "mode": "absolute",
                            "steps": [{"color": "green", "value": None}, {"color": "red", "value": 1}],
                        },
                        mappings=[
                            {
                                "type": "value",
                                "options": {
                                    "0": {"text": "fresh", "color": "green"},
                                    "1": {"text": "STALE", "color": "red"},
                                },
                            }
                        ],
                    ),
                ),
                (
                    18,
                    8,
                    timeseries(
                        "Seconds since the last successful refresh, per variable",
                        f"{c.SINCE_REFRESH.help} The red dashed line: {c.STALE_THRESHOLD.help}",
                        [
                            query(f"max by (variable) ({c.SINCE_REFRESH.name})", "{{variable}}"),
                            query(f"max({c.STALE_THRESHOLD.name})", stale_legend),
                        ],
                        c.SINCE_REFRESH.unit,
                        overrides=[red_line(f"^{stale_legend}$", dashed=True)],
                    ),
                ),
                (
                    12,
                    8,
                    timeseries(
                        "Age of the value served, per variable",
                        c.VALUE_AGE.help,
                        [query(f"max by (variable) ({c.VALUE_AGE.name})", "{{variable}}")],
                        c.VALUE_AGE.unit,
                    ),
                ),
                (
                    12,
                    8,
                    stat(
                        "Region served, per variable",
                        c.SERVED_REGION.help,
                        [query(f"max by (variable, region) ({c.SERVED_REGION.name}) == 1", "{{variable}}: {{region}}")],
                        text_mode="name",
                        color_mode="none",
                    ),
                ),
            ],
        ),
        (
            "Refreshes and Secrets Manager",
            [
                (
                    12,
                    8,
                    timeseries(
                        "Refresh failures by cause (per second)",
                        c.REFRESH_FAILURES.help,
                        [query(rate(c.REFRESH_FAILURES, "variable, cause"), "{{variable}}: {{cause}}")],
                        "ops",
                    ),
                ),
                (
                    12,
                    8,
                    timeseries(
                        "Refresh attempts (per second)",
                        c.REFRESH_ATTEMPTS.help,
                        [query(rate(c.REFRESH_ATTEMPTS, "variable"), "{{variable}}")],
                        "ops",
                    ),
                ),
                (
                    18,
                    8,
                    timeseries(
                        "Secrets Manager calls by operation and result (per second)",
                        f"{c.SM_CALLS.help} Throttled calls are drawn thick and red.",
                        [query(rate(c.SM_CALLS, "operation, result"), "{{operation}} {{result}}")],
                        "ops",
                        overrides=[red_line(f".* {throttled}$", width=3)],
                    ),
                ),
                (
                    6,
                    8,
                    stat(
                        "Throttled Secrets Manager calls in the time range",
                        f"{c.SM_CALLS.help} Here: the calls answered '{throttled}' over the dashboard's time range.",
                        [
                            query(
                                f'sum(increase({c.SM_CALLS.name}{{result="{throttled}"}}[$__range])) or vector(0)',
                                throttled,
                            )
                        ],
                        thresholds={
                            "mode": "absolute",
                            "steps": [{"color": "green", "value": None}, {"color": "orange", "value": 1}],
                        },
                        decimals=0,
                    ),
                ),
            ],
        ),
        (
            "Rotation, as the API follows it",
            [
                (
                    12,
                    8,
                    timeseries(
                        "Database password: refusals vs recoveries (per second)",
                        f"Refusals: {c.DB_REFUSALS.help} Recoveries: {c.DB_RECOVERIES.help}",
                        [
                            query(rate(c.DB_REFUSALS), "refused with the cached password"),
                            query(rate(c.DB_RECOVERIES, "stage"), "recovered with {{stage}}"),
                        ],
                        "ops",
                        overrides=[red_line("^refused")],
                    ),
                ),
                (
                    12,
                    8,
                    timeseries(
                        "JWT: tokens verified with the previous key (per second)",
                        c.JWT_PREVIOUS_KEY.help,
                        [query(rate(c.JWT_PREVIOUS_KEY), "previous key")],
                        "ops",
                    ),
                ),
            ],
        ),
        (
            "Requests",
            [
                (
                    24,
                    8,
                    timeseries(
                        "Responses by status class, and requests refused for the database (per second)",
                        f"{c.HTTP_RESPONSES.help} Database: {c.DB_UNAVAILABLE.help} Overload: "
                        f"{c.DB_POOL_EXHAUSTED.help} 5xx are drawn red.",
                        [
                            query(rate(c.HTTP_RESPONSES, "status_class"), "{{status_class}}"),
                            query(rate(c.DB_UNAVAILABLE), "503 database unavailable"),
                            query(rate(c.DB_POOL_EXHAUSTED), "503 overloaded"),
                        ],
                        "reqps",
                        overrides=[red_line("^5xx$", width=3), red_line("^503 database", dashed=True)],
                    ),
                ),
            ],
        ),
        (
            "Logins",
            [
                (
                    24,
                    8,
                    timeseries(
                        "Login failures, 429s and lockouts (per second)",
                        f"401: {c.LOGIN_FAILURES.help} 429: {c.LOGIN_THROTTLED.help} Lockouts: {c.LOGIN_LOCKOUTS.help}",
                        [
                            query(rate(c.LOGIN_FAILURES), "401 wrong email or password"),
                            query(rate(c.LOGIN_THROTTLED, "reason"), "429 {{reason}}"),
                            query(rate(c.LOGIN_LOCKOUTS), "lockouts started"),
                        ],
                        "ops",
                    ),
                ),
            ],
        ),
    ]


def dashboard(catalog: ModuleType) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    next_id, y = 1, 0
    for title, members in rows(catalog):
        panels.append(
            {
                "type": "row",
                "id": next_id,
                "title": title,
                "collapsed": False,
                "panels": [],
                "gridPos": grid(0, y, 24, 1),
            }
        )
        next_id, y, x, row_height = next_id + 1, y + 1, 0, 0
        for width, height, spec in members:
            if x + width > WIDTH:
                x, y, row_height = 0, y + row_height, 0
            queries = spec.pop("queries")
            panel = {
                "id": next_id,
                "gridPos": grid(x, y, width, height),
                "datasource": DATASOURCE,
                "targets": [
                    {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "range": True, **q}
                    for i, q in enumerate(queries)
                ],
                **spec,
            }
            panels.append(panel)
            next_id, x, row_height = next_id + 1, x + width, max(row_height, height)
        y += row_height
    return {
        "uid": "ecomind-secrets",
        "title": "EcoMind: the secret layer",
        "description": (
            "Generated by deploy/grafana/dashboard.py from api/app/telemetry.py: do not edit by hand. "
            "What each panel says and what to do: docs/operations.md, Dashboard."
        ),
        "tags": ["ecomind", "secrets"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "browser",
        "annotations": {"list": []},
        "links": [],
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "refresh": 1,
                    "hide": 0,
                    "includeAll": False,
                    "multi": False,
                    "options": [],
                    "regex": "",
                },
                {
                    "name": "filter",
                    "label": "Filter",
                    "description": "Narrow every query by a label of the scraped targets (namespace, job, pod...).",
                    "type": "adhoc",
                    "datasource": DATASOURCE,
                    "hide": 0,
                },
            ]
        },
        "panels": panels,
    }


def grid(x: int, y: int, w: int, h: int) -> dict[str, int]:
    return {"x": x, "y": y, "w": w, "h": h}


def text() -> str:
    return json.dumps(dashboard(telemetry()), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="fail when the committed file differs")
    group.add_argument("--stdout", action="store_true", help="print the dashboard")
    args = parser.parse_args(argv)
    generated = text()
    if args.stdout:
        sys.stdout.write(generated)
    elif args.check:
        if not OUTPUT.is_file() or OUTPUT.read_text() != generated:
            sys.stderr.write(
                f"dashboard: {OUTPUT.relative_to(ROOT)} is not what api/app/telemetry.py generates; "
                "run: python3 deploy/grafana/dashboard.py\n"
            )
            return 1
    else:
        OUTPUT.write_text(generated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
